/**
 * The one description of the configuration file, in TypeBox. From it come:
 *   - the parsed config's TypeScript type (`Static`; see mirror-config.ts for the two computed keys),
 *   - the defaults (`default` annotations, filled in by ajv while it validates),
 *   - the JSON Schema shipped as mirror.config.schema.json (`npm run schema` writes it;
 *     test/config/config-schema.test.ts fails when the shipped file is out of step).
 *
 * Keys with a default are required in the TypeBox description, so the static type says they are
 * always there once parsed; `fileSchema` takes them out of `required` for the file, where they may
 * be left out.
 */
import { Type, type Static, type TProperties, type TSchema } from '@sinclair/typebox';

/** A closed section of the file whose own keys all have defaults: `{}` when left out. */
function Section<T extends TProperties>(properties: T, options: { description?: string } = {}) {
  return Type.Object(properties, { additionalProperties: false, default: {}, ...options });
}

/** A closed section that is either given whole or left out (tls, auth, accel). */
function OptionalSection<T extends TProperties>(properties: T, description: string) {
  return Type.Optional(Type.Object(properties, { additionalProperties: false, description }));
}

/** TypeBox's documented pattern for a string enum: `enum` in the schema, a union of literals in the type. */
function StringEnum<const T extends readonly string[]>(values: T, options: { default?: T[number]; description?: string } = {}) {
  return Type.Unsafe<T[number]>({ enum: [...values], ...options });
}

const BYTE_SIZE_PATTERN = '^\\s*[0-9]+(\\.[0-9]+)?\\s*([KMGT]i?B?|B)?\\s*$';
const REGISTRY_HOST_PATTERN = '^(localhost|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+)(:[0-9]{1,5})?$';

/** Bytes, or a size string that mirror-config.ts turns into bytes after validation: a number once parsed. */
const ByteSize = Type.Unsafe<number>({
  description: 'Disk budget for cached blobs: bytes, or a string such as "50GiB" or "500MB"',
  oneOf: [
    { type: 'integer', minimum: 1 },
    { type: 'string', pattern: BYTE_SIZE_PATTERN },
  ],
  default: 50 * 2 ** 30,
});

const HostList = (description: string) => Type.Array(Type.String({ minLength: 1 }), { default: [], description });

const Seconds = (defaultValue: number, description?: string) =>
  Type.Number({ exclusiveMinimum: 0, default: defaultValue, ...(description === undefined ? {} : { description }) });

export const UpstreamSchema = Type.Object(
  {
    url: Type.String({ pattern: '^https?://[^/?#@]+/?$', description: 'Base URL of the registry, without path' }),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
    tokenRealms: HostList("Extra hosts (host or host:port) trusted as token realms besides the upstream's own host, e.g. auth.docker.io"),
    redirectHosts: HostList(
      "Hosts (host or host:port) the upstream may redirect to although they resolve to loopback, private or other non-public addresses (a CDN stand-in on an internal network). Public hosts need no entry; the upstream's own host and tokenRealms are always allowed",
    ),
  },
  { additionalProperties: false },
);

/** `auth.access[]`: hosted/access-rules.ts reads it (glob patterns are checked there, naming the key). */
const AccessRuleSchema = Type.Object(
  {
    users: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'htpasswd user names; "*" means any authenticated user' }),
    repositories: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Repository patterns: "*" one path component, "**" any depth; proxied ones as <registry>/<name>, e.g. "docker.io/**"' }),
    actions: Type.Array(Type.Unsafe<'pull' | 'push' | 'delete'>({ enum: ['pull', 'push', 'delete'] }), { minItems: 1 }),
  },
  { additionalProperties: false },
);

/** `notifications.endpoints[]`: hosted/notification-config.ts reads it. */
const NotificationEndpointSchema = Type.Object(
  {
    url: Type.String({ pattern: '^https?://', description: 'Where events are POSTed' }),
    name: Type.Optional(Type.String({ minLength: 1 })),
    headers: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Array(Type.String())]))),
    timeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    backoffSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    maxBackoffSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    queueSize: Type.Optional(Type.Integer({ minimum: 1 })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

const HostedSchema = Section(
  {
    repositories: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Repositories this mirror hosts (accepts pushes, never proxies): glob patterns, "*" one path component, "**" any depth, e.g. ["team/**", "my-image"]',
    }),
    allowAnonymousPush: Type.Boolean({ default: false, description: 'Without auth.htpasswd, let anyone push to hosted repositories (a lab, as registry:2 runs by default)' }),
    trustForwardedHeaders: Type.Boolean({
      default: false,
      description:
        'Build the absolute URLs of upload Locations and events from X-Forwarded-Proto and X-Forwarded-Host when the request comes from a loopback peer (a TLS-terminating or port-mapping front on the same host or pod, e.g. deploy/nginx). Off: from the Host header and this server\'s own scheme',
    }),
    uploadExpirySeconds: Type.Integer({ minimum: 1, default: 86400, description: 'Unfinished uploads not written to for this long are removed' }),
    gc: Section({
      intervalSeconds: Type.Integer({ minimum: 0, default: 3600, description: 'Online garbage collection of hosted content every this many seconds; 0: only `registry-mirror gc`' }),
      graceSeconds: Type.Integer({ minimum: 0, default: 3600, description: 'Unreferenced hosted blobs and untagged manifests younger than this survive a collection (pushes in progress)' }),
    }),
  },
  { description: 'Hosted repositories: pushed to this mirror, beside the pull-through cache' },
);

export const METADATA_STORES = ['sqlite', 'file', 'memory', 'redis'] as const;
export const STORAGE_DRIVERS = ['filesystem', 's3'] as const;

/** `storage.s3` (issue 15): credentials are not here, they come from the AWS environment and credential chain. */
export const S3StorageSchema = Type.Object(
  {
    endpoint: Type.Optional(Type.String({ pattern: '^https?://[^?#]+$', description: 'An S3-compatible endpoint (MinIO, Ceph RGW, R2...); absent: AWS S3 in `region`' })),
    bucket: Type.String({ minLength: 3, maxLength: 63, description: 'The bucket every replica shares (it must exist)' }),
    region: Type.Optional(Type.String({ minLength: 1, description: 'Default us-east-1' })),
    forcePathStyle: Type.Boolean({ default: false, description: 'Bucket in the path (endpoint/bucket/key), as most S3-compatible servers need' }),
    prefix: Type.String({ default: '', description: 'Key prefix for everything the mirror stores, e.g. "mirror/"' }),
    redirect: Type.Boolean({ default: false, description: 'Warm blob GETs answer 307 to a presigned S3 URL (5 minutes) instead of sending the bytes; HEAD is still answered by the mirror' }),
  },
  { additionalProperties: false },
);
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const MirrorConfigSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    listen: Section({
      host: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Address to bind, e.g. 0.0.0.0, 127.0.0.1 or ::1' }),
      port: Type.Integer({ minimum: 0, maximum: 65535, default: 5000 }),
      sendTimeoutSeconds: Seconds(60, 'A client that takes no byte of a blob body for this long while the mirror has bytes for it is cut off, freeing its connection and files (like nginx send_timeout)'),
    }),
    cache: Section({
      dir: Type.String({ minLength: 1, default: './data', description: 'Directory holding blobs, manifests and (by default) tag metadata' }),
      maxBytes: ByteSize,
    }),
    tags: Section({
      ttlSeconds: Type.Integer({ minimum: 0, default: 300, description: 'How long a tag is answered without asking the upstream; 0 revalidates on every request' }),
      staleIfErrorSeconds: Type.Unsafe<number | null>({
        type: ['integer', 'null'],
        minimum: 0,
        default: null,
        description: 'How long past its TTL a tag may be served while the upstream fails; null (default) means no limit',
      }),
    }),
    fetch: Section({
      maxConcurrent: Type.Integer({ minimum: 1, maximum: 1024, default: 16, description: 'Upstream blob fetches running at once, per upstream' }),
      connectTimeoutSeconds: Seconds(10),
      headersTimeoutSeconds: Seconds(30),
      idleTimeoutSeconds: Seconds(60, 'Longest pause between two chunks of an upstream body'),
      fillTimeoutSeconds: Seconds(3600, 'Deadline for filling one blob into the cache, whether or not clients are still reading'),
      maxQueued: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1000, description: 'Upstream blob fetches that may wait for a slot, per upstream; beyond that requests are answered 503 with Retry-After. Fetches whose clients all left are dropped before they start' }),
      abandonStalledSeconds: Seconds(30, 'A cache fill no client follows is abandoned when it received less than 64 KiB in this many seconds, freeing its upstream slot'),
      prefetch: Type.Boolean({ default: true, description: 'When an image manifest is fetched for a client, start fetching its config and layers that are not cached, so the client\'s blob requests join downloads already running' }),
    }),
    metadata: Section({
      store: StringEnum(METADATA_STORES, {
        default: 'sqlite',
        description: 'sqlite (default): one database file under cache.dir ("file" is the old name for it); memory: nothing kept across restarts; redis: shared by replicas',
      }),
      redisUrl: Type.Optional(Type.String({ pattern: '^rediss?://' })),
      maxVerdicts: Type.Integer({
        minimum: 1,
        default: 100_000,
        description: 'Access verdicts (is this repository anonymously readable?) kept at most; the least recently set are forgotten first, costing one anonymous upstream check each',
      }),
    }),
    storage: Section({
      driver: StringEnum(STORAGE_DRIVERS, {
        default: 'filesystem',
        description: 'filesystem (default): blobs under cache.dir; s3: blobs in storage.s3, shared by replicas, with a local copy of hot blobs under cache.dir bounded by cache.maxBytes',
      }),
      s3: Type.Optional(S3StorageSchema),
    }),
    cluster: Section({
      advertiseUrl: Type.Optional(Type.String({
        pattern: '^https?://[^/?#@]+/?$',
        description: 'Where the other replicas reach this one (e.g. http://10.0.0.7:5000): they stream a blob download in progress from its owner. Needs MIRROR_CLUSTER_SECRET in the environment; env MIRROR_CLUSTER_ADVERTISE_URL overrides it',
      })),
    }),
    tls: OptionalSection(
      {
        cert: Type.String({ minLength: 1, description: 'PEM certificate chain file (server certificate first)' }),
        key: Type.String({ minLength: 1, description: 'PEM private key file' }),
      },
      'Serve HTTPS instead of HTTP. Relative paths are relative to this file.',
    ),
    auth: OptionalSection(
      {
        htpasswd: Type.String({ minLength: 1, description: 'htpasswd file with bcrypt entries (htpasswd -B); relative to this file. Read at start-up.' }),
        access: Type.Optional(Type.Array(AccessRuleSchema, {
          description: 'Who may pull, push and delete what. Absent: every authenticated user may pull anything and push and delete hosted repositories. Present: only what a rule grants',
        })),
      },
      'Require HTTP Basic credentials from clients for everything but /healthz and /readyz',
    ),
    accel: OptionalSection(
      {
        redirectPrefix: Type.String({
          pattern: '^/([A-Za-z0-9_~-][A-Za-z0-9._~-]*/)+$',
          description: "Path of nginx's internal location aliasing <cache.dir>/blobs/, e.g. /_registry_mirror_blobs/ (absolute, ending in /)",
        }),
      },
      'ONLY with nginx in front (deploy/nginx/registry-mirror.conf): cached blob GETs answer with an empty body and X-Accel-Redirect, and nginx sends the file. A client reaching the mirror directly gets no bytes.',
    ),
    sendfile: Type.Boolean({
      default: true,
      description: 'Send cached blob bodies with sendfile(2) (default true; used when the native addon was built at install, on Linux, without tls). false: copy them through user space',
    }),
    offline: Type.Boolean({ default: false, description: 'Never contact an upstream; serve only what is cached' }),
    log: Section({ level: StringEnum(LOG_LEVELS, { default: 'info' }) }),
    defaultUpstream: Type.Optional(
      Type.Unsafe<string | null>({
        anyOf: [{ type: 'string', minLength: 1 }, { type: 'null' }],
        description:
          'Upstream for requests that name no registry (no ?ns= and no host prefix); default docker.io when configured, else the first upstream. null: every such name is a hosted repository (the registry:2 behaviour)',
      }),
    ),
    upstreams: Type.Record(Type.String(), UpstreamSchema, {
      propertyNames: { pattern: REGISTRY_HOST_PATTERN },
      description: 'Registries to mirror, by host name; may be empty only when defaultUpstream is null',
    }),
    hosted: HostedSchema,
    notifications: OptionalSection(
      {
        endpoints: Type.Array(NotificationEndpointSchema, { description: 'Webhooks sent push and delete events in distribution\'s envelope format' }),
      },
      'Webhook notifications on push and delete (hosted repositories), retried with back-off, never blocking a push',
    ),
  },
  { additionalProperties: false },
);

/** The config as validation leaves it: every key with a default is present. */
export type ValidatedConfig = Static<typeof MirrorConfigSchema>;

const FILE_SCHEMA_HEADER = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://registry-mirror.dev/mirror.config.schema.json',
  title: 'registry-mirror configuration',
};

/** The JSON Schema of the file: plain JSON (TypeBox's symbols dropped), keys with defaults not required. */
export function fileSchema(): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(MirrorConfigSchema)) as unknown;
  return { ...FILE_SCHEMA_HEADER, ...(withoutDefaultedRequired(plain) as Record<string, unknown>) };
}

/** What `npm run schema` writes to mirror.config.schema.json. */
export function fileSchemaText(): string {
  return `${JSON.stringify(fileSchema(), null, 2)}\n`;
}

function withoutDefaultedRequired(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutDefaultedRequired);
  if (node === null || typeof node !== 'object') return node;
  const schema = Object.fromEntries(Object.entries(node).map(([key, value]) => [key, withoutDefaultedRequired(value)])) as Record<string, unknown>;
  const properties = schema.properties as Record<string, TSchema> | undefined;
  if (Array.isArray(schema.required) && properties) {
    const required = (schema.required as string[]).filter((key) => properties[key]?.default === undefined);
    if (required.length > 0) schema.required = required;
    else delete schema.required;
  }
  return schema;
}
