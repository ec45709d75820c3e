/**
 * @opsplane/pki — the built-in certificate authority (ECDSA P-256, @peculiar/x509 over
 * WebCrypto): CA directories (`opsplane ca init`), leaf certificates for the server,
 * controllers, agents and clients (`opsplane ca issue`), CSRs for renewal, and the identity a
 * certificate carries (`urn:opsplane:<kind>:<area>:<name>`, read with node:crypto).
 */
export * from './identity.js';
export * from './ca.js';
export * from './csr.js';
export * from './files.js';
export * from './tls-files.js';
