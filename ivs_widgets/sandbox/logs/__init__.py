"""Chat logging: delivered frames written as records to local stand-ins for S3, CloudWatch Logs and Firehose."""
