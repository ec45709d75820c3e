/**
 * @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata API at
 * import time. Every module of this package that imports @peculiar/x509 imports this first.
 */
import 'reflect-metadata';
