/**
 * Turns the PEM found in a key file into PKCS#8, the only RSA private key encoding WebCrypto
 * imports. Keys pasted into environment variables often carry literal `\n`, and older tooling
 * emits PKCS#1 (`BEGIN RSA PRIVATE KEY`), so both are accepted.
 */

const PEM_BLOCK = /-----BEGIN ((?:RSA )?PRIVATE KEY)-----([A-Za-z0-9+/=\s]+)-----END \1-----/;

export function normalizePrivateKeyPem(raw: string): string | null {
  const text = raw.replace(/\\r/g, '').replace(/\\n/g, '\n');
  const match = PEM_BLOCK.exec(text);
  if (!match?.[1] || !match[2]) return null;
  const body = match[2].replace(/\s+/g, '');
  let der: Uint8Array;
  try {
    der = base64Decode(body);
  } catch {
    return null; // Not decodable base64: a truncated or mangled paste.
  }
  const pkcs8 = match[1] === 'PRIVATE KEY';
  // Checked now, so that a wrong or damaged key is a configuration error at startup rather than
  // a 500 on every request when WebCrypto first refuses it.
  if (!(pkcs8 ? isRsaPkcs8(der) : isRsaPkcs1(der))) return null;
  return pkcs8 ? toPem(body) : toPem(base64Encode(wrapPkcs1InPkcs8(der)));
}

/** The offset of a DER SEQUENCE's content if it spans exactly the whole of `der`, else -1. */
function sequenceContent(der: Uint8Array): number {
  if (der[0] !== 0x30 || der.length < 2) return -1;
  const first = der[1] as number;
  let length = first;
  let offset = 2;
  if (first >= 0x80) {
    const count = first & 0x7f;
    if (count < 1 || count > 3) return -1;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (der[2 + i] ?? 0);
    offset = 2 + count;
  }
  // A paste that lost a line still decodes as base64, but no longer fills its declared length.
  return offset + length === der.length ? offset : -1;
}

/** PKCS#8 for RSA: version 0, then the rsaEncryption algorithm (an EC key, say, is not one). */
function isRsaPkcs8(der: Uint8Array): boolean {
  const at = sequenceContent(der);
  return at !== -1 && startsWith(der, at, [...VERSION_0, ...RSA_ALGORITHM]);
}

/** PKCS#1 RSAPrivateKey: version 0, then the modulus, an INTEGER. */
function isRsaPkcs1(der: Uint8Array): boolean {
  const at = sequenceContent(der);
  return at !== -1 && startsWith(der, at, [...VERSION_0, 0x02]);
}

function startsWith(bytes: Uint8Array, at: number, prefix: readonly number[]): boolean {
  return prefix.every((byte, i) => bytes[at + i] === byte);
}

function toPem(base64: string): string {
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

// RFC 5208 §5: PrivateKeyInfo ::= SEQUENCE { version INTEGER 0,
//   algorithm SEQUENCE { rsaEncryption OID, NULL }, privateKey OCTET STRING (the PKCS#1 DER) }
const VERSION_0 = [0x02, 0x01, 0x00];
const RSA_ALGORITHM = [
  0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

function wrapPkcs1InPkcs8(pkcs1: Uint8Array): Uint8Array {
  const octetString = [0x04, ...derLength(pkcs1.length)];
  const contentLength = VERSION_0.length + RSA_ALGORITHM.length + octetString.length + pkcs1.length;
  const header = [
    0x30,
    ...derLength(contentLength),
    ...VERSION_0,
    ...RSA_ALGORITHM,
    ...octetString,
  ];
  const out = new Uint8Array(header.length + pkcs1.length);
  out.set(header);
  out.set(pkcs1, header.length);
  return out;
}

// X.690 §8.1.3: short form below 128, otherwise 0x80|count followed by big-endian length bytes.
function derLength(length: number): number[] {
  if (length < 0x80) return [length];
  const bytes: number[] = [];
  for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

function base64Decode(base64: string): Uint8Array {
  const binary = atob(base64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function base64Encode(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
