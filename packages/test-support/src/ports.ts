/** Free loopback ports for test daemons: the fleet's port picker (one for the repository). */
export { canListen, freePort, stablePort } from '@opsplane/fleet';
