import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { commandWorks, isRecord, readYaml, readYamlDocuments, repoPath } from './support.js';

export const kustomizationDir = 'deploy';
export const kustomizationFile = 'deploy/kustomization.yaml';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

export interface Kustomization {
  resources: string[];
  configMapGenerator: { name: string; files: string[] }[];
  images: { name: string; newName?: string; newTag?: string }[];
  namespace?: string;
}

export function loadKustomization(): Kustomization {
  const raw = readYaml(kustomizationFile);
  if (!isRecord(raw)) throw new Error(`${kustomizationFile} is not a mapping`);
  return {
    resources: (raw.resources as string[] | undefined) ?? [],
    configMapGenerator: (raw.configMapGenerator as Kustomization['configMapGenerator'] | undefined) ?? [],
    images: (raw.images as Kustomization['images'] | undefined) ?? [],
    ...(typeof raw.namespace === 'string' ? { namespace: raw.namespace } : {}),
  };
}

/** A generator entry's files as repository paths (`key=path` or `path`, relative to deploy/). */
export function generatorSources(kustomization: Kustomization): string[] {
  return kustomization.configMapGenerator.flatMap((generator) =>
    generator.files.map((file) => join(kustomizationDir, file.includes('=') ? file.slice(file.indexOf('=') + 1) : file)),
  );
}

export type Rendering =
  { rendered: true; objects: KubeObject[]; placeholders: string[] } | { rendered: false; objects: KubeObject[]; reason: string };

/**
 * Renders the kustomization with `kubectl kustomize`. A generator file that another part of the
 * project has not written yet is replaced by a placeholder in a temporary copy, so the rest
 * still renders; the caller reports which. Without kubectl, returns the resource files' objects
 * as written (no namespace, generated ConfigMaps or image rewrites) and says so.
 */
export function renderKustomization(): Rendering {
  const kustomization = loadKustomization();
  if (!commandWorks('kubectl', ['version', '--client'])) {
    const objects = kustomization.resources.flatMap((resource) => readYamlDocuments(join(kustomizationDir, resource)) as KubeObject[]);
    return { rendered: false, objects, reason: 'kubectl is not on PATH: checked the resource files as written, unrendered' };
  }
  const placeholders = generatorSources(kustomization).filter((source) => !existsSync(repoPath(source)));
  let dir = repoPath(kustomizationDir);
  let scratch: string | undefined;
  if (placeholders.length > 0) {
    scratch = mkdtempSync(join(tmpdir(), 'switchyard-kustomize-'));
    dir = join(scratch, kustomizationDir);
    const copy = (path: string, placeholder: boolean) => {
      mkdirSync(dirname(join(scratch as string, path)), { recursive: true });
      if (placeholder) writeFileSync(join(scratch as string, path), '# placeholder: the real file is not written yet\n');
      else copyFileSync(repoPath(path), join(scratch as string, path));
    };
    copy(kustomizationFile, false);
    for (const resource of kustomization.resources) copy(join(kustomizationDir, resource), false);
    for (const source of generatorSources(kustomization)) copy(source, placeholders.includes(source));
  }
  try {
    const result = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
    if (result.status !== 0) throw new Error(`kubectl kustomize ${kustomizationDir} failed: ${result.stderr || result.error?.message}`);
    const objects = parseAllDocuments(result.stdout).map((doc) => doc.toJS() as KubeObject);
    return { rendered: true, objects, placeholders };
  } finally {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

export function describe(object: KubeObject): string {
  return `${object.kind}/${object.metadata.name}`;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/**
 * Validates one object against the Kubernetes OpenAPI schema of its apiVersion and kind, as
 * compiled by kubernetes-models. Returns the problems with their JSON paths.
 */
export async function schemaProblems(object: KubeObject): Promise<string[]> {
  let Model: ModelClass | undefined;
  try {
    const module = (await import(/* @vite-ignore */ `kubernetes-models/${object.apiVersion}/${object.kind}`)) as Record<string, ModelClass>;
    Model = module[object.kind];
  } catch {
    Model = undefined;
  }
  if (Model === undefined) return [`no schema for ${object.apiVersion} ${object.kind} in kubernetes-models`];
  try {
    new Model(object).validate();
    return [];
  } catch (err) {
    const errors = (err as { errors?: { instancePath: string; message?: string }[] }).errors;
    if (errors === undefined) return [err instanceof Error ? err.message : String(err)];
    return errors.map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`);
  }
}

/**
 * Kubernetes' OpenAPI schemas allow extra properties, so a misspelt field (`readinesProbe`)
 * passes schema validation and the API server drops it. This types each object with
 * kubernetes-models' interface for its kind and lets the TypeScript compiler's excess-property
 * check find every field the API does not have.
 */
export function unknownFieldProblems(objects: KubeObject[]): string[] {
  const fileName = repoPath('test/deploy/__kubernetes-objects__.ts');
  const lines: string[] = [];
  const declarations: { start: number; object: KubeObject }[] = [];
  objects.forEach((object, i) =>
    lines.push(`import type { I${object.kind} as T${i} } from 'kubernetes-models/${object.apiVersion}/${object.kind}';`),
  );
  let offset = lines.reduce((sum, line) => sum + line.length + 1, 0);
  objects.forEach((object, i) => {
    const line = `export const o${i}: T${i} = ${JSON.stringify(object)};`;
    declarations.push({ start: offset, object });
    lines.push(line);
    offset += line.length + 1;
  });
  const source = lines.join('\n') + '\n';
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === fileName ? ts.createSourceFile(name, source, languageVersion) : getSourceFile(name, languageVersion, ...rest);
  host.fileExists = (name) => name === fileName || fileExists(name);
  const program = ts.createProgram([fileName], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
    const owner = declarations.findLast((d) => d.start <= (diagnostic.start ?? 0));
    return `${owner === undefined ? '(imports)' : describe(owner.object)}: ${message}`;
  });
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: Record<string, Record<string, string>> }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface Probe {
  httpGet?: { path: string; port: string | number };
  exec?: { command: string[] };
  tcpSocket?: { port: string | number };
  grpc?: { port: number };
}

export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: SecurityContext & { runAsGroup?: number };
  volumes?: Record<string, unknown>[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  enableServiceLinks?: boolean;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  affinity?: { podAntiAffinity?: { preferredDuringSchedulingIgnoredDuringExecution?: WeightedPodAffinityTerm[] } };
}

export interface WeightedPodAffinityTerm {
  weight: number;
  podAffinityTerm: { topologyKey: string; labelSelector?: { matchLabels?: Record<string, string> } };
}

export interface Workload extends KubeObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

export function workloads(objects: KubeObject[]): Workload[] {
  return objects.filter((o): o is Workload => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind));
}

export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/**
 * Where a pod falls short of the "restricted" Pod Security Standard (the namespace enforces it,
 * so the API server would refuse the pod) or of a read-only root filesystem.
 */
export function restrictedProblems(pod: PodSpec): string[] {
  const problems: string[] = [];
  for (const flag of ['hostNetwork', 'hostPID', 'hostIPC'] as const) if (pod[flag] === true) problems.push(`${flag} is set`);
  const allowedVolumes = new Set([
    'configMap',
    'csi',
    'downwardAPI',
    'emptyDir',
    'ephemeral',
    'persistentVolumeClaim',
    'projected',
    'secret',
  ]);
  for (const volume of pod.volumes ?? []) {
    const type = Object.keys(volume).find((key) => key !== 'name');
    if (type !== undefined && !allowedVolumes.has(type)) problems.push(`volume ${String(volume.name)} is a ${type}`);
  }
  const podContext = pod.securityContext ?? {};
  for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) {
    const context = container.securityContext ?? {};
    const at = `container ${container.name}`;
    if ((context.runAsNonRoot ?? podContext.runAsNonRoot) !== true) problems.push(`${at}: runAsNonRoot is not true`);
    if ((context.runAsUser ?? podContext.runAsUser) === 0) problems.push(`${at}: runs as user 0`);
    const seccomp = context.seccompProfile?.type ?? podContext.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push(`${at}: seccomp profile is ${seccomp ?? 'unset'}`);
    if (context.privileged === true) problems.push(`${at}: privileged`);
    if (context.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation is not false`);
    if (!(context.capabilities?.drop ?? []).includes('ALL')) problems.push(`${at}: does not drop ALL capabilities`);
    const added = (context.capabilities?.add ?? []).filter((cap) => cap !== 'NET_BIND_SERVICE');
    if (added.length > 0) problems.push(`${at}: adds capabilities ${added.join(', ')}`);
    if (context.readOnlyRootFilesystem !== true) problems.push(`${at}: root filesystem is writable`);
  }
  return problems;
}

/** What the kubelet fills in for a pod field, where the value must look like one (an IP is validated as a host). */
const fieldExamples: Record<string, string> = { 'status.podIP': '10.244.0.7' };

/** A container's environment as the process sees it; values from Secrets and fields become placeholders or examples. */
export function containerEnv(container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of container.env ?? []) {
    if (entry.value !== undefined) env[entry.name] = entry.value;
    else if (entry.valueFrom?.secretKeyRef !== undefined)
      env[entry.name] = `secret:${entry.valueFrom.secretKeyRef.name}/${entry.valueFrom.secretKeyRef.key}`;
    else if (entry.valueFrom?.fieldRef !== undefined) {
      const path = entry.valueFrom.fieldRef.fieldPath as string;
      env[entry.name] = fieldExamples[path] ?? `field:${path}`;
    } else env[entry.name] = '';
  }
  return env;
}
