// The text frames (TXXX) of ID3v2 tags, as timed metadata carries them in an HLS stream.
//
// Amazon IVS puts PutMetadata's text into the stream as an ID3 tag with a TXXX frame (in MPEG-TS as
// an ID3 stream, in fMP4 as an emsg box); hls.js hands the player the tag's bytes with their time.
// The bytes come from the stream: nothing is trusted, every length is checked against the buffer,
// and the text is only ever shown with textContent. Sent by the kernel only to pages that play
// with hls.js (Safari's own HLS engine decodes ID3 itself).

const HEADER = 10; // "ID3", version, revision, flags, a 4-byte syncsafe size
const FOOTER_FLAG = 0x10;
const EXTENDED_HEADER_FLAG = 0x40;
const UTF16_WITH_BOM = 1;
const UTF16BE = 2;
const ENCODINGS = { 0: "iso-8859-1", 1: "utf-16le", 2: "utf-16be", 3: "utf-8" };

function syncsafe(bytes, at) {
  return ((bytes[at] & 0x7f) << 21) | ((bytes[at + 1] & 0x7f) << 14) | ((bytes[at + 2] & 0x7f) << 7)
    | (bytes[at + 3] & 0x7f);
}

function uint32(bytes, at) {
  return ((bytes[at] << 24) >>> 0) + (bytes[at + 1] << 16) + (bytes[at + 2] << 8) + bytes[at + 3];
}

function decode(bytes, encoding) {
  let label = ENCODINGS[encoding];
  if (encoding === UTF16_WITH_BOM && bytes[0] === 0xfe && bytes[1] === 0xff) label = "utf-16be";
  return new TextDecoder(label).decode(bytes).replace(/^\uFEFF/, "").replace(/\0+$/, "");
}

/** Where the string that starts at ``from`` ends: a 0 byte, or two aligned ones in UTF-16. */
function terminator(bytes, from, encoding) {
  const wide = encoding === UTF16_WITH_BOM || encoding === UTF16BE;
  for (let i = from; i < bytes.length; i += wide ? 2 : 1) {
    if (bytes[i] === 0 && (!wide || bytes[i + 1] === 0)) return [i, i + (wide ? 2 : 1)];
  }
  return [bytes.length, bytes.length];
}

function txxx(body) {
  const encoding = body[0];
  if (!(encoding in ENCODINGS)) return null;
  const [descriptionEnd, textStart] = terminator(body, 1, encoding);
  return {
    description: decode(body.subarray(1, descriptionEnd), encoding),
    text: decode(body.subarray(textStart), encoding),
  };
}

/** ``[{description, text}]`` for each TXXX frame of the ID3v2.3/2.4 tags in ``bytes`` (a Uint8Array). */
export function id3TextFrames(bytes) {
  const frames = [];
  let tag = 0;
  while (tag + HEADER <= bytes.length && bytes[tag] === 0x49 && bytes[tag + 1] === 0x44 && bytes[tag + 2] === 0x33) {
    const version = bytes[tag + 3];
    const flags = bytes[tag + 5];
    const end = Math.min(bytes.length, tag + HEADER + syncsafe(bytes, tag + 6));
    let at = tag + HEADER;
    if (flags & EXTENDED_HEADER_FLAG && at + 4 <= end) {
      at += version >= 4 ? syncsafe(bytes, at) : 4 + uint32(bytes, at);
    }
    while (at + HEADER <= end && bytes[at] !== 0) { // a 0 byte starts the padding
      const id = String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
      const size = version >= 4 ? syncsafe(bytes, at + 4) : uint32(bytes, at + 4);
      const bodyEnd = Math.min(end, at + HEADER + size);
      if (id === "TXXX" && bodyEnd > at + HEADER) {
        const frame = txxx(bytes.subarray(at + HEADER, bodyEnd));
        if (frame) frames.push(frame);
      }
      at += HEADER + size;
    }
    tag = end + (flags & FOOTER_FLAG ? HEADER : 0);
  }
  return frames;
}
