/** @noSelfInFile */
// The two shapes Kong loads from a plugin folder, typed so that a wrong shape does not compile.
//
// handler.ts:
//   type Config = ConfigOf<typeof import("./schema")>;
//   const handler: KongPluginHandler<Config> = {
//     PRIORITY: 900,
//     VERSION: "0.1.0",
//     access(conf) { ... },          // transpiles to `access = function(self, conf)`, called as handler:access(conf)
//   };
//   export = handler;
//
// schema.ts:
//   import * as typedefs from "kong.db.schema.typedefs";
//   const schema = {
//     name: "my-plugin",
//     fields: [
//       { protocols: typedefs.protocols_http },
//       { config: { type: "record", fields: [ { limit: { type: "integer", required: true, default: 10, gt: 0 } } ] } },
//     ],
//   } as const satisfies KongPluginSchema;
//   export = schema;
//
// `as const` keeps the literal field definitions so ConfigOf<> can derive the conf type from them;
// `satisfies KongPluginSchema` checks the shape against Kong's MetaSubSchema without widening it.

// ---------------------------------------------------------------------------------------------
// Handler
// ---------------------------------------------------------------------------------------------

/**
 * The `self` of handler methods: the handler table itself.
 * @noSelf
 */
interface KongPluginHandlerSelf {
  readonly PRIORITY: number;
  readonly VERSION: string;
}

/**
 * Fields and phase methods every handler may have.
 * @noSelf
 */
interface KongPluginHandlerBase<Conf> {
  /**
   * Execution order: higher runs first in every phase (key-auth 1250, rate-limiting 910,
   * ai-proxy 770, http-log 12). Kong refuses to load a non-integer.
   */
  PRIORITY: number;
  /** `x.y.z`; Kong refuses to load anything else. */
  VERSION: `${number}.${number}.${number}`;
  /** Once per worker at start (errors are caught and logged). Set up timers and worker-level state here. */
  init_worker?(this: KongPluginHandlerSelf): void;
  /**
   * After init_worker and every time the plugin configuration changes: every enabled config of
   * this plugin, or `undefined` when there are none.
   */
  configure?(this: KongPluginHandlerSelf, configs: readonly Conf[] | undefined): void;
  /** TLS handshake (global plugin instances only). */
  certificate?(this: KongPluginHandlerSelf, conf: Conf): void;
  /** Before routing (global plugin instances only). */
  rewrite?(this: KongPluginHandlerSelf, conf: Conf): void;
  /**
   * After routing and authentication of higher-priority plugins; runs in its own coroutine.
   * An uncaught error becomes a 500 "An unexpected error occurred" and skips later access handlers.
   */
  access?(this: KongPluginHandlerSelf, conf: Conf): void;
  /** Once per request, after the whole request: send metrics, write logs (no cosockets: use ngx.timer.at). */
  log?(this: KongPluginHandlerSelf, conf: Conf): void;
}

/**
 * A handler that streams the response: header_filter and/or body_filter, no `response`.
 * @noSelf
 */
interface KongPluginStreamingPhases<Conf> {
  /** Kong refuses a handler that has both `response` and header_filter/body_filter. */
  response?: undefined;
  /** When the response headers are about to be sent. */
  header_filter?(this: KongPluginHandlerSelf, conf: Conf): void;
  /** Once per response body chunk: `ngx.arg[1]` is the chunk, `ngx.arg[2]` the eof flag. */
  body_filter?(this: KongPluginHandlerSelf, conf: Conf): void;
}

/**
 * A handler that sees the whole buffered response in `response` (turns on buffered proxying).
 * @noSelf
 */
interface KongPluginBufferedPhases<Conf> {
  /** After the whole upstream response was read (`kong.service.response.get_raw_body()` works). */
  response(this: KongPluginHandlerSelf, conf: Conf): void;
  /** Not allowed together with `response` (Kong refuses to load the plugin). */
  header_filter?: undefined;
  /** Not allowed together with `response` (Kong refuses to load the plugin). */
  body_filter?: undefined;
}

/**
 * A plugin's handler table. `Conf` is the plugin's `config` record as Kong passes it to each
 * phase (derive it with `ConfigOf<typeof import("./schema")>`). Implementing `response` together
 * with `header_filter` or `body_filter` is a type error, as it is a load error in Kong.
 */
type KongPluginHandler<Conf = KongPluginConf> = KongPluginHandlerBase<Conf> &
  (KongPluginStreamingPhases<Conf> | KongPluginBufferedPhases<Conf>);

/**
 * Keys Kong adds to every conf table before calling a phase (kong/runloop/plugins_iterator.lua).
 * @noSelf
 */
interface KongConfInjected {
  readonly route_id?: string;
  readonly service_id?: string;
  readonly consumer_id?: string;
  readonly plugin_instance_name?: string;
  readonly __plugin_id?: string;
  readonly __key__?: string;
  readonly __seq__?: number;
}

/**
 * A conf without a schema-derived type (prefer ConfigOf).
 * @noSelf
 */
interface KongPluginConf extends KongConfInjected {
  readonly [key: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// Schema: field definitions (kong/db/schema/metaschema.lua)
// ---------------------------------------------------------------------------------------------

/** What a `custom_validator` returns: `true`, or a falsy value and an error message. */
type KongValidatorResult = boolean | LuaMultiReturn<[true] | [true, undefined] | [undefined | false, string]>;

/**
 * A pattern with its own error message, as in `match_all` / `match_none`.
 * @noSelf
 */
interface KongPatternCheck {
  readonly pattern: string;
  readonly err: string;
}

/**
 * Deprecation marker of a field.
 * @noSelf
 */
interface KongFieldDeprecation {
  readonly message: string;
  readonly removal_in_version: string;
  readonly old_default?: unknown;
  readonly replaced_with?: readonly { readonly path: readonly string[] }[];
}

/**
 * Attributes every field type accepts.
 * @noSelf
 */
interface KongFieldCommon<T> {
  /** Validation fails when the value is missing (and there is no default). */
  readonly required?: boolean;
  /** 10 to 500 characters. */
  readonly description?: string;
  readonly examples?: readonly unknown[];
  readonly auto?: boolean;
  readonly unique?: boolean;
  readonly immutable?: boolean;
  /** Replaces the validators' error message. */
  readonly err?: string;
  readonly encrypted?: boolean;
  /** The value may be a vault reference (`{vault://...}`). */
  readonly referenceable?: boolean;
  readonly transient?: boolean;
  readonly deprecation?: KongFieldDeprecation;
  /** Must equal this value (`ngx.null` to forbid a value, as the no_* typedefs do). */
  readonly eq?: T | NgxNull;
  readonly ne?: T | NgxNull;
  readonly custom_validator?: (this: void, value: T) => KongValidatorResult;
}

/** @noSelf */
interface KongStringField extends KongFieldCommon<string> {
  readonly type: "string";
  readonly default?: string;
  readonly len_eq?: number;
  readonly len_min?: number;
  readonly len_max?: number;
  /** A Lua pattern (not a PCRE) the value must match. */
  readonly match?: string;
  readonly not_match?: string;
  readonly match_all?: readonly KongPatternCheck[];
  readonly match_none?: readonly KongPatternCheck[];
  readonly match_any?: { readonly patterns: readonly string[]; readonly err?: string };
  readonly starts_with?: string;
  /** The value must be one of these (ConfigOf turns them into a literal union). */
  readonly one_of?: readonly string[];
  readonly not_one_of?: readonly string[];
  /** The value must compile as a PCRE. */
  readonly is_regex?: boolean;
  readonly uuid?: boolean;
  readonly timestamp?: boolean;
}

/** @noSelf */
interface KongNumberField extends KongFieldCommon<number> {
  /** `integer` rejects non-integral numbers. */
  readonly type: "number" | "integer";
  readonly default?: number;
  /** Inclusive range `[min, max]`. */
  readonly between?: readonly [number, number];
  /** Strictly greater than. */
  readonly gt?: number;
  readonly one_of?: readonly number[];
  readonly not_one_of?: readonly number[];
  readonly timestamp?: boolean;
}

/** @noSelf */
interface KongBooleanField extends KongFieldCommon<boolean> {
  readonly type: "boolean";
  readonly default?: boolean;
}

/** @noSelf */
interface KongArrayField extends KongFieldCommon<readonly unknown[]> {
  /** `set` rejects duplicates. */
  readonly type: "array" | "set";
  readonly elements: KongFieldDef;
  readonly default?: readonly unknown[];
  readonly len_eq?: number;
  readonly len_min?: number;
  readonly len_max?: number;
  /** The array must contain this value. */
  readonly contains?: unknown;
}

/** @noSelf */
interface KongMapField extends KongFieldCommon<{ readonly [key: string]: unknown }> {
  readonly type: "map";
  readonly keys: KongFieldDef;
  readonly values: KongFieldDef;
  readonly default?: { readonly [key: string]: unknown };
  readonly len_eq?: number;
  readonly len_min?: number;
  readonly len_max?: number;
}

/** @noSelf */
interface KongRecordField extends KongFieldCommon<{ readonly [key: string]: unknown }> {
  readonly type: "record";
  readonly fields: readonly KongFieldEntry[];
  readonly entity_checks?: readonly KongEntityCheck[];
  readonly shorthand_fields?: readonly KongShorthandEntry[];
  readonly default?: { readonly [key: string]: unknown };
  readonly abstract?: boolean;
}

/** @noSelf */
interface KongForeignField extends KongFieldCommon<{ readonly id: string }> {
  readonly type: "foreign";
  readonly reference: string;
  readonly on_delete?: "cascade" | "null" | "restrict";
  readonly default?: NgxNull;
}

/** @noSelf */
interface KongJsonField extends KongFieldCommon<unknown> {
  readonly type: "json";
  readonly json_schema: { readonly inline?: object; readonly parent_subschema_key?: string; readonly namespace?: string; readonly optional?: boolean };
  readonly default?: unknown;
}

/** @noSelf */
interface KongFunctionField extends KongFieldCommon<(...args: never[]) => unknown> {
  readonly type: "function";
}

/** Any field definition of Kong's schema library. */
type KongFieldDef =
  | KongStringField
  | KongNumberField
  | KongBooleanField
  | KongArrayField
  | KongMapField
  | KongRecordField
  | KongForeignField
  | KongJsonField
  | KongFunctionField;

/**
 * One entry of a `fields` array: `{ name: definition }` (Kong keeps the array order).
 * @noSelf
 */
interface KongFieldEntry {
  readonly [name: string]: KongFieldDef;
}

/**
 * A shorthand field: accepted on input and turned into other fields by `func`.
 * @noSelf
 */
interface KongShorthandEntry {
  readonly [name: string]: KongFieldDef & {
    readonly func: (this: void, value: never) => object;
    readonly translate_backwards?: readonly string[];
  };
}

/**
 * Validators usable in `conditional` entity checks (`if_match`, `then_match`).
 * @noSelf
 */
interface KongMatchValidators {
  readonly eq?: unknown;
  readonly ne?: unknown;
  readonly gt?: number;
  readonly between?: readonly [number, number];
  readonly one_of?: readonly unknown[];
  readonly not_one_of?: readonly unknown[];
  readonly match?: string;
  readonly required?: boolean;
  readonly len_min?: number;
  readonly len_max?: number;
}

/** Cross-field checks (`entity_checks`); field names are dot paths such as `"config.redis.host"`. */
type KongEntityCheck =
  | { readonly at_least_one_of: readonly string[] }
  | { readonly only_one_of: readonly string[] }
  | { readonly mutually_required: readonly string[] }
  | { readonly mutually_exclusive: readonly string[] }
  | { readonly mutually_exclusive_sets: { readonly set1: readonly string[]; readonly set2: readonly string[] } }
  | { readonly distinct: readonly string[] }
  | {
      readonly conditional: {
        readonly if_field: string;
        readonly if_match: KongMatchValidators;
        readonly then_field: string;
        readonly then_match: KongMatchValidators;
        readonly then_err?: string;
      };
    }
  | {
      readonly conditional_at_least_one_of: {
        readonly if_field: string;
        readonly if_match: KongMatchValidators;
        readonly then_at_least_one_of: readonly string[];
        readonly then_err?: string;
        readonly else_match?: KongMatchValidators;
        readonly else_then_at_least_one_of?: readonly string[];
        readonly else_then_err?: string;
      };
    }
  | {
      readonly custom_entity_check: {
        readonly field_sources: readonly string[];
        readonly fn: (this: void, entity: { readonly [key: string]: unknown }) => KongValidatorResult;
        readonly run_with_missing_fields?: boolean;
        readonly run_with_invalid_fields?: boolean;
      };
    };

// ---------------------------------------------------------------------------------------------
// Schema: the plugin schema (MetaSubSchema of the `plugins` entity)
// ---------------------------------------------------------------------------------------------

/**
 * A top-level entry of a plugin schema's `fields`. Only fields of the `plugins` entity may be
 * specialised (Kong: "cannot create a new field"): scope restrictions (`consumer`, `route`,
 * `service`, usually `typedefs.no_consumer` ...), `protocols` and the `config` record.
 */
type KongPluginSchemaEntry =
  | { readonly consumer: KongForeignField }
  | { readonly route: KongForeignField }
  | { readonly service: KongForeignField }
  | { readonly protocols: KongArrayField }
  | { readonly config: KongRecordField }
  | { readonly enabled: KongBooleanField }
  | { readonly tags: KongArrayField }
  | { readonly instance_name: KongStringField };

/**
 * What `schema.lua` returns for a plugin (validated by Kong's MetaSubSchema).
 * @noSelf
 */
interface KongPluginSchema {
  /** The plugin's name: the folder name and the `name` in declarative config. */
  readonly name: string;
  readonly fields: readonly KongPluginSchemaEntry[];
  readonly entity_checks?: readonly KongEntityCheck[];
  readonly shorthand_fields?: readonly KongShorthandEntry[];
  readonly transformations?: readonly object[];
  readonly check?: (this: void, entity: { readonly [key: string]: unknown }) => KongValidatorResult;
}

// ---------------------------------------------------------------------------------------------
// ConfigOf: the conf type derived from an `as const` schema
// ---------------------------------------------------------------------------------------------

type KongUnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type KongSimplify<T> = { [K in keyof T]: T[K] } & {};

/** Kong fills a field when it has a default, or is a required record (expanded with its nested defaults). */
type KongFieldIsPresent<D> = D extends { readonly default: unknown }
  ? true
  : D extends { readonly required: true }
    ? true
    : false;

/** The Lua value of a field definition, as TypeScript sees it in conf. */
type KongValueOf<D> = D extends { readonly type: "string" }
  ? D extends { readonly one_of: readonly (infer L)[] }
    ? L
    : string
  : D extends { readonly type: "number" | "integer" }
    ? D extends { readonly one_of: readonly (infer L)[] }
      ? L
      : number
    : D extends { readonly type: "boolean" }
      ? boolean
      : D extends { readonly type: "array" | "set"; readonly elements: infer E }
        ? readonly KongValueOf<E>[]
        : D extends { readonly type: "map"; readonly values: infer V }
          ? { readonly [key: string]: KongValueOf<V> | undefined }
          : D extends { readonly type: "record"; readonly fields: infer F extends readonly KongFieldEntry[] }
            ? KongRecordOf<F>
            : D extends { readonly type: "foreign" }
              ? { readonly id: string }
              : unknown;

type KongEntryProps<E> = E extends unknown
  ? { readonly [K in keyof E as KongFieldIsPresent<E[K]> extends true ? K : never]: KongValueOf<E[K]> } & {
      readonly [K in keyof E as KongFieldIsPresent<E[K]> extends true ? never : K]?: KongValueOf<E[K]>;
    }
  : never;

/** The conf table of a `fields` array: present fields are required, others optional (Kong strips nulls). */
type KongRecordOf<F extends readonly KongFieldEntry[]> = KongSimplify<KongUnionToIntersection<KongEntryProps<F[number]>>>;

/** The `config` record definition of a plugin schema. */
type KongConfigFieldOf<S> = S extends { readonly fields: readonly (infer E)[] } ? KongConfigEntryOf<E> : never;
type KongConfigEntryOf<E> = E extends { readonly config: infer C } ? C : never;

/**
 * The conf type a handler receives, derived from the schema:
 * `type Config = ConfigOf<typeof import("./schema")>`. The schema must be declared `as const`.
 * String fields with `one_of` become literal unions; fields with a default (or required) are
 * always present; Kong's injected keys (`__plugin_id`, `route_id`, ...) are included.
 */
type ConfigOf<S> = KongConfigFieldOf<S> extends { readonly fields: infer F extends readonly KongFieldEntry[] }
  ? KongSimplify<KongRecordOf<F> & KongConfInjected>
  : never;
