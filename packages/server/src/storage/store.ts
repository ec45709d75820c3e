/**
 * The repositories over one Database (or one transaction). `store.transaction(fn)` hands `fn` a
 * Store whose repositories all run in the same transaction — how a change and its audit record
 * are committed together, or not at all.
 */
import type { SecretBox } from '../security/crypto.js';
import { AlertsRepo } from './alerts-repo.js';
import {
  databaseContent,
  type ArtifactContentStore,
  type ContentStoreFactory,
} from './artifact-content-store.js';
import { ArtifactsRepo } from './artifacts-repo.js';
import { AuditRepo } from './audit-repo.js';
import { BatchesRepo } from './batches-repo.js';
import { ControllersHistoryRepo } from './controllers-history-repo.js';
import type { Database } from './database.js';
import { DeploymentsRepo } from './deployments-repo.js';
import { DevicesRepo } from './devices-repo.js';
import { HostKeysRepo } from './host-keys-repo.js';
import { LeadershipRepo } from './leadership-repo.js';
import { OutboxRepo } from './outbox-repo.js';
import { PoliciesRepo } from './policies-repo.js';
import { PolicyRolloutsRepo } from './policy-rollouts-repo.js';
import { RateLimitsRepo } from './rate-limits-repo.js';
import { MetricsRepo } from './metrics-repo.js';
import { SilencesRepo } from './silences-repo.js';
import { SecretsRepo, SettingsRepo } from './secrets-repo.js';
import { SessionsRepo } from './sessions-repo.js';
import { TokensRepo } from './tokens-repo.js';
import { UsersRepo } from './users-repo.js';

export class Store {
  readonly users: UsersRepo;
  readonly sessions: SessionsRepo;
  readonly tokens: TokensRepo;
  readonly devices: DevicesRepo;
  readonly audit: AuditRepo;
  readonly secrets: SecretsRepo;
  readonly settings: SettingsRepo;
  readonly controllersHistory: ControllersHistoryRepo;
  readonly batches: BatchesRepo;
  readonly deployments: DeploymentsRepo;
  readonly hostKeys: HostKeysRepo;
  readonly alerts: AlertsRepo;
  readonly leadership: LeadershipRepo;
  readonly outbox: OutboxRepo;
  readonly rateLimits: RateLimitsRepo;
  readonly silences: SilencesRepo;
  readonly metrics: MetricsRepo;
  readonly artifacts: ArtifactsRepo;
  /** Artifacts' content (in this database, or an S3 store: see artifact-content-store.ts). */
  readonly artifactContent: ArtifactContentStore;
  readonly policies: PoliciesRepo;
  readonly policyRollouts: PolicyRolloutsRepo;

  constructor(
    readonly db: Database,
    readonly box: SecretBox,
    private readonly contentStore: ContentStoreFactory = databaseContent,
  ) {
    this.users = new UsersRepo(db);
    this.sessions = new SessionsRepo(db);
    this.tokens = new TokensRepo(db);
    this.devices = new DevicesRepo(db, box);
    this.audit = new AuditRepo(db);
    this.secrets = new SecretsRepo(db, box);
    this.settings = new SettingsRepo(db);
    this.controllersHistory = new ControllersHistoryRepo(db);
    this.batches = new BatchesRepo(db);
    this.deployments = new DeploymentsRepo(db);
    this.hostKeys = new HostKeysRepo(db);
    this.alerts = new AlertsRepo(db);
    this.leadership = new LeadershipRepo(db);
    this.outbox = new OutboxRepo(db);
    this.rateLimits = new RateLimitsRepo(db);
    this.silences = new SilencesRepo(db);
    this.metrics = new MetricsRepo(db);
    this.artifacts = new ArtifactsRepo(db);
    this.artifactContent = contentStore(db);
    this.policies = new PoliciesRepo(db);
    this.policyRollouts = new PolicyRolloutsRepo(db);
  }

  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => fn(new Store(tx, this.box, this.contentStore)));
  }
}
