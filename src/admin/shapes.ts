import {
  Type,
  type ObjectOptions,
  type SchemaOptions,
  type Static,
  type StringOptions,
  type TProperties,
  type TSchema,
} from '@sinclair/typebox';
import { TypeCompiler, type ValueError } from '@sinclair/typebox/compiler';
import type { FastifyInstance, FastifyRequest, FastifySchemaCompiler, FastifyTypeProvider } from 'fastify';
import { InputError } from '../errors/index.js';

/**
 * The admin routes' declared shapes. Fastify compiles each once at start-up with TypeBox's compiler
 * (no coercion, nothing silently removed: an unknown member is refused, as the zod checks did), and
 * serialises answers with the response shapes. A refusal is an InputError (422 INVALID_INPUT) whose
 * message is the failing member's `description` when it has one, so the shapes document the very rule
 * a caller is told about.
 */
export function declareShapes(admin: FastifyInstance): void {
  admin.setValidatorCompiler(compileShape);
  // The refusal is raised by the handler once the caller is authenticated and authorised (see
  // rejectInvalid), so an anonymous caller still gets 401 and every refusal is audited with its caller.
  admin.addHook('onRoute', (route) => {
    if (route.schema) route.attachValidation = true;
  });
}

/**
 * Types a route's request from its declared shapes. Answers stay `unknown` to the compiler because
 * governed() answers what its stages return; the response shapes hold them at run time (serialisation)
 * and in the admin OpenAPI tests.
 */
export interface AdminTypeProvider extends FastifyTypeProvider {
  readonly validator: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
  readonly serializer: unknown;
}

/** Throws the refusal of a request that does not fit its route's declared shapes. */
export function rejectInvalid(request: FastifyRequest): void {
  if (request.validationError) throw request.validationError;
}

const compileShape: FastifySchemaCompiler<TSchema> = ({ schema }) => {
  const check = TypeCompiler.Compile(schema);
  return (value) => (check.Check(value) ? { value } : { error: refusalOf(check.Errors(value).First()) });
};

function refusalOf(error: ValueError | undefined): InputError {
  const where = error?.path.slice(1).split('/').join('.') || 'body';
  const rule: unknown = error?.schema.description;
  const message = typeof rule === 'string' ? rule : `${where}: ${error?.message ?? 'invalid'}`;
  return new InputError(message, { parameter: where.slice(0, 64) });
}

/** An object whose members beyond the declared ones are kept (serialised as they are). */
export const Open = <T extends TProperties>(properties: T = {} as T, options: ObjectOptions = {}) =>
  Type.Object(properties, { ...options, additionalProperties: true });

/** An object with only the declared members: anything else is refused. */
export const Closed = <T extends TProperties>(properties: T, options: ObjectOptions = {}) =>
  Type.Object(properties, { ...options, additionalProperties: false });

export const Nullable = <T extends TSchema>(schema: T, options: SchemaOptions = {}) =>
  Type.Union([schema, Type.Null()], options);

/** One query parameter, given once. */
export const QueryText = (options: StringOptions = {}) => Type.Optional(Type.String(options));

/** One query parameter, given once, that is one of `values`. */
export const QueryChoice = (values: readonly string[], description: string) =>
  Type.Optional(
    Type.Union(
      values.map((v) => Type.Literal(v)),
      { description },
    ),
  );

/** A page of records and the cursor of the next one (null on the last page). */
export const Page = <T extends TSchema>(record: T) =>
  Open({ records: Type.Array(record), next_cursor: Nullable(Type.String()) });

/** A non-blank reason of up to 500 characters (the handler trims it). */
export const Reason = (description: string) => Type.String({ maxLength: 500, pattern: '\\S', description });

export const IdParams = Closed({ id: Type.String() });
