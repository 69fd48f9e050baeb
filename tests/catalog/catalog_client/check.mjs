// Drives Backstage's CatalogClient against a running Greenroom and prints what every call
// returned (or threw) as one JSON object. Inputs come from the environment:
//   GREENROOM_URL, GREENROOM_TOKEN  the server and a token for it
//   ALL_YAML                        a file location registered before this script runs
//   EXTRA_YAML                      an unregistered file with components extra-one and extra-two
// Calls are made in order and each is recorded on its own, so one incompatibility does not hide
// the others: {"ok": value} or {"error": {name, status, errorName, message}}.
import { writeFileSync, readFileSync } from 'node:fs';
import { CatalogClient } from '@backstage/catalog-client';

const base = process.env.GREENROOM_URL;
const token = process.env.GREENROOM_TOKEN;
const seen = [];
const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` },
  fetchApi: {
    fetch: (url, init) => {
      seen.push(`${init?.method ?? 'GET'} ${String(url).slice(base.length)}`);
      return fetch(url, { ...init, headers: { ...init?.headers, Authorization: `Bearer ${token}` } });
    },
  },
});

const out = {};
async function call(name, fn) {
  const before = seen.length;
  try {
    const value = await fn();
    out[name] = { ok: value === undefined ? null : value, undefined: value === undefined };
  } catch (e) {
    out[name] = { error: { name: e?.name, status: e?.response?.status ?? e?.statusCode,
                           errorName: e?.body?.error?.name ?? e?.cause?.name, message: String(e?.message) } };
  }
  out[name].requests = seen.slice(before);
  return out[name].ok;
}
const refOf = (e) => `${e.kind}:${e.metadata.namespace ?? 'default'}/${e.metadata.name}`.toLowerCase();

await call('getEntities', async () =>
  (await client.getEntities({ filter: { kind: 'component' } })).items.map(refOf).sort());
await call('getEntitiesFieldsOrderLimit', async () =>
  (await client.getEntities({ filter: [{ kind: 'component', 'spec.type': 'service' }, { kind: 'api' }],
                               fields: ['kind', 'metadata.name'], order: { field: 'metadata.name', order: 'desc' },
                               limit: 4 })).items);
await call('getEntityByRef', () => client.getEntityByRef('component:default/petstore'));
await call('getEntityByRefMissing', () => client.getEntityByRef('component:default/no-such-thing'));
await call('getEntitiesByRefs', async () =>
  (await client.getEntitiesByRefs({ entityRefs: ['component:default/petstore', 'component:default/no-such-thing',
                                                 'api:default/petstore'], fields: ['kind', 'metadata.name'] })).items
    .map((e) => (e ? refOf(e) : null)));

const groups = [];
const first = await call('queryEntities', async () => {
  const page = await client.queryEntities({ filter: { kind: 'group' }, limit: 5 });
  groups.push(...page.items.map(refOf));
  return { refs: page.items.map(refOf), totalItems: page.totalItems, pageInfo: page.pageInfo };
});
if (first?.pageInfo?.nextCursor) {
  await call('queryEntitiesNext', async () => {
    let cursor = first.pageInfo.nextCursor; const pages = [];
    while (cursor) {
      const page = await client.queryEntities({ cursor, limit: 5 });
      groups.push(...page.items.map(refOf));
      pages.push({ refs: page.items.map(refOf), totalItems: page.totalItems, pageInfo: page.pageInfo });
      cursor = page.pageInfo.nextCursor;
      if (pages.length > 50) throw new Error('cursor never ends');
    }
    return { pages, allGroups: groups.slice().sort() };
  });
}
await call('queryEntitiesOrdered', async () => {
  const page = await client.queryEntities({ filter: { kind: 'component' },
                                            orderFields: { field: 'metadata.name', order: 'desc' }, limit: 3,
                                            fullTextFilter: { term: 'pet', fields: ['metadata.name'] } });
  return { refs: page.items.map(refOf), totalItems: page.totalItems };
});
await call('queryEntitiesPredicate', async () => {
  const page = await client.queryEntities({ query: { kind: 'component', 'spec.lifecycle': { $in: ['production'] } },
                                            limit: 100 });
  return { refs: page.items.map(refOf).sort(), totalItems: page.totalItems };
});
await call('streamEntities', async () => {
  const refs = [];
  for await (const page of client.streamEntities({ filter: { kind: 'system' }, pageSize: 2 })) refs.push(...page.map(refOf));
  return refs.sort();
});
await call('getEntityFacets', () => client.getEntityFacets({ facets: ['spec.type'] }));
await call('getEntityFacetsFiltered', () => client.getEntityFacets({ facets: ['kind'], filter: { 'spec.type': 'service' } }));

await call('getLocations', async () => (await client.getLocations()).items);
await call('getLocationByRef', () => client.getLocationByRef(`file:${process.env.ALL_YAML}`));
await call('getLocationByRefMissing', () => client.getLocationByRef('file:/nowhere/catalog-info.yaml'));
await call('queryLocations', () => client.queryLocations({ limit: 1 }));
await call('streamLocations', async () => {
  const pages = [];
  for await (const page of client.streamLocations({ limit: 1 })) pages.push(page.map((l) => l.target));
  return pages;
});
await call('getLocationByEntity', () => client.getLocationByEntity('component:default/petstore'));

const extra = process.env.EXTRA_YAML;
await call('addLocationDryRun', async () => {
  const r = await client.addLocation({ type: 'file', target: extra, dryRun: true });
  return { location: r.location, exists: r.exists ?? null, refs: r.entities.map(refOf).sort() };
});
await call('getEntityByRefAfterDryRun', () => client.getEntityByRef('component:default/extra-one'));
const added = await call('addLocation', async () => {
  const r = await client.addLocation({ type: 'file', target: extra });
  return { location: r.location, exists: r.exists ?? null, refs: r.entities.map(refOf).sort() };
});
await call('addLocationAgain', () => client.addLocation({ type: 'file', target: extra }));
if (added?.location?.id) {
  await call('getLocationById', () => client.getLocationById(added.location.id));
}
await call('getLocationByIdMissing', () => client.getLocationById('00000000-0000-4000-8000-000000000000'));

await call('getEntityAncestors', () => client.getEntityAncestors({ entityRef: 'component:default/extra-one' }));
await call('getEntityAncestorsMissing', () => client.getEntityAncestors({ entityRef: 'component:default/no-such-thing' }));
await call('refreshEntity', () => client.refreshEntity('component:default/petstore'));
await call('refreshEntityMissing', () => client.refreshEntity('component:default/no-such-thing'));

const valid = { apiVersion: 'backstage.io/v1alpha1', kind: 'Component',
                metadata: { name: 'checked' }, spec: { type: 'service', lifecycle: 'production', owner: 'team-a' } };
await call('validateEntityValid', () => client.validateEntity(valid, 'url:https://example.com/catalog-info.yaml'));
await call('validateEntityInvalid', () => client.validateEntity(
  { ...valid, metadata: { name: 'Not A Valid Name!' } }, 'url:https://example.com/catalog-info.yaml'));
await call('validateEntityNoKind', () => client.validateEntity(
  { apiVersion: 'backstage.io/v1alpha1', metadata: { name: 'x' } }, 'url:https://example.com/catalog-info.yaml'));

// Orphan: the file stops defining extra-two; a refresh reads it again and flags the entity.
writeFileSync(extra, readFileSync(extra, 'utf8').split('\n---\n')[0] + '\n');
await call('refreshExtra', () => client.refreshEntity('component:default/extra-one'));
const orphan = await call('orphan', () => client.getEntityByRef('component:default/extra-two'));
if (orphan?.metadata?.uid) {
  await call('removeEntityByUid', () => client.removeEntityByUid(orphan.metadata.uid));
  await call('orphanAfterRemove', () => client.getEntityByRef('component:default/extra-two'));
}
await call('removeEntityByUidMissing', () => client.removeEntityByUid('00000000-0000-4000-8000-000000000000'));
if (added?.location?.id) {
  await call('removeLocationById', () => client.removeLocationById(added.location.id));
  await call('getLocationByIdRemoved', () => client.getLocationById(added.location.id));
}

// Without credentials every call is refused the way Backstage refuses it.
const anonymous = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` },
  fetchApi: { fetch: (url, init) => { seen.push(`${init?.method ?? 'GET'} ${String(url).slice(base.length)}`); return fetch(url, init); } },
});
await call('unauthenticated', () => anonymous.getEntityByRef('component:default/petstore'));

process.stdout.write(JSON.stringify(out));
