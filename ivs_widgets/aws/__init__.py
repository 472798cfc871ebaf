"""The AWS form of what the sandbox offers as a shortcut, done for real with boto3 (client side).

On the sandbox a review handler is a Python function and chat logs go to a local folder. On AWS the
same notebook cells deploy the function as a Lambda (:mod:`.review_lambda`, packaged by
:mod:`.handler_source`), create a bucket that log delivery may write to (:mod:`.log_bucket`), and
record everything they create in :class:`.created.CreatedResources`, which removes it all again on
``backend.close()`` or when the kernel exits. Nothing here imports the sandbox.
"""
