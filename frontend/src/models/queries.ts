import { api, call, type Schemas } from '../api/client';

export type ModelView = Schemas['ModelView'];
export type VersionView = Schemas['VersionView'];

export const modelsQuery = () => ({
  queryKey: ['models'] as const,
  queryFn: () => call(api.GET('/v1/models')),
});

export const modelQuery = (name: string) => ({
  queryKey: ['models', name] as const,
  queryFn: () => call(api.GET('/v1/models/{name}', { params: { path: { name } } })),
});

export function latestVersion(model: ModelView): VersionView | undefined {
  return model.versions?.reduce<VersionView | undefined>(
    (latest, v) => (!latest || v.version > latest.version ? v : latest),
    undefined,
  );
}

/** The version predictions use by default: the one `production` points at. */
export function servingVersion(model: ModelView): VersionView | undefined {
  const wanted = model.aliases.production;
  return model.versions?.find((v) => v.version === wanted) ?? latestVersion(model);
}
