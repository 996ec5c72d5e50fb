// Validates Kubernetes objects against their published schemas with maintained validators:
// kubernetes-models (core, apps, autoscaling), @kubernetes-models/keda, /knative and
// /gateway-api. Run through scripts/k8s-validator.sh, which installs them.
//
//   node k8s-validate.mjs NODE_MODULES FILE...
//
// A FILE holds YAML (one or more documents) or JSON; a `kind: List` is expanded. Prints one line
// per object ("ok Kind name") and, for an invalid one, "FILE: Kind name: message"; exits 1 when
// any object is invalid or of a kind no validator covers (nothing passes unchecked).
//
// KServe publishes no model package for ClusterServingRuntime. Its pod fields (containers,
// volumes, nodeSelector, tolerations, affinity, ...) are checked as a core/v1 PodSpec, and its
// own fields against the types of KServe's servingruntime_types.go, written out below.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modulesDir, ...files] = process.argv.slice(2);
if (!modulesDir || files.length === 0) {
  console.error("usage: node k8s-validate.mjs NODE_MODULES FILE...");
  process.exit(2);
}
// The model packages export ES modules by file (".../apps/v1/Deployment.js"); yaml and ajv are
// resolved as packages.
const load = (specifier) => import(pathToFileURL(path.join(modulesDir, `${specifier}.js`)).href);
const require = createRequire(path.join(path.resolve(modulesDir), "noop.js"));
const { parseAllDocuments } = require("yaml");
const Ajv = require("ajv").default;

const classes = {
  "v1/Service": ["kubernetes-models/v1/Service", "Service"],
  "v1/ConfigMap": ["kubernetes-models/v1/ConfigMap", "ConfigMap"],
  "apps/v1/Deployment": ["kubernetes-models/apps/v1/Deployment", "Deployment"],
  "autoscaling/v2/HorizontalPodAutoscaler": [
    "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler",
    "HorizontalPodAutoscaler",
  ],
  "keda.sh/v1alpha1/ScaledObject": ["@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject", "ScaledObject"],
  "serving.knative.dev/v1/Service": ["@kubernetes-models/knative/serving.knative.dev/v1/Service", "Service"],
  "gateway.networking.k8s.io/v1/HTTPRoute": [
    "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute",
    "HTTPRoute",
  ],
};

// spec fields of ServingRuntimeSpec that are not pod fields (KServe's servingruntime_types.go).
const podFields = [
  "containers", "volumes", "nodeSelector", "affinity", "tolerations", "imagePullSecrets",
  "hostIPC", "hostNetwork", "hostPID", "schedulerName", "resourceClaims", "serviceAccountName",
  "securityContext", "priorityClassName", "initContainers", "dnsPolicy", "runtimeClassName",
  "topologySpreadConstraints", "terminationGracePeriodSeconds",
];
const stringMap = { type: "object", additionalProperties: { type: "string" } };
const servingRuntimeSpec = {
  type: "object",
  required: ["containers"],
  properties: {
    supportedModelFormats: {
      type: "array",
      items: {
        type: "object",
        required: ["name"],
        additionalProperties: false,
        properties: {
          name: { type: "string", minLength: 1 },
          version: { type: "string" },
          autoSelect: { type: "boolean" },
          priority: { type: "integer", minimum: 1, maximum: 2147483647 },
        },
      },
    },
    protocolVersions: { type: "array", items: { enum: ["v1", "v2", "grpc-v1", "grpc-v2"] } },
    multiModel: { type: "boolean" },
    disabled: { type: "boolean" },
    labels: stringMap,
    annotations: stringMap,
    grpcEndpoint: { type: "string" },
    grpcDataEndpoint: { type: "string" },
    httpDataEndpoint: { type: "string" },
    replicas: { type: "integer", minimum: 0 },
    storageHelper: { type: "object", properties: { disabled: { type: "boolean" } } },
    builtInAdapter: { type: "object" },
    workerSpec: { type: "object" },
    ...Object.fromEntries(podFields.map((f) => [f, {}])),
  },
  additionalProperties: false,
};
const runtimeSchema = {
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  properties: {
    apiVersion: { const: "serving.kserve.io/v1alpha1" },
    kind: { enum: ["ClusterServingRuntime", "ServingRuntime"] },
    metadata: {
      type: "object",
      required: ["name"],
      properties: { name: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" } },
    },
    spec: servingRuntimeSpec,
  },
};
const validateRuntime = new Ajv({ allErrors: true, strict: false }).compile(runtimeSchema);

async function validate(object) {
  const key = `${object.apiVersion}/${object.kind}`;
  if (object.apiVersion === "serving.kserve.io/v1alpha1" && /ServingRuntime$/.test(object.kind)) {
    if (!validateRuntime(object)) {
      throw new Error(validateRuntime.errors.map((e) => `${e.instancePath || "/"} ${e.message}`).join("; "));
    }
    const podSpec = Object.fromEntries(
      podFields.filter((f) => object.spec[f] !== undefined).map((f) => [f, object.spec[f]]),
    );
    const { Pod } = await load("kubernetes-models/v1/Pod");
    new Pod({ metadata: { name: object.metadata.name }, spec: podSpec }).validate();
    return;
  }
  const entry = classes[key];
  if (!entry) throw new Error(`no validator for ${key}`);
  const module = await load(entry[0]);
  new module[entry[1]](object).validate();
}

let failed = false;
for (const file of files) {
  const text = readFileSync(file, "utf8");
  let objects = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      console.log(`${file}: YAML: ${doc.errors[0].message}`);
      failed = true;
      continue;
    }
    const value = doc.toJS();
    if (value == null) continue;
    if (value.kind === "List" && Array.isArray(value.items)) objects.push(...value.items);
    else objects.push(value);
  }
  for (const object of objects) {
    const label = `${object?.kind} ${object?.metadata?.name}`;
    try {
      await validate(object);
      console.log(`ok ${label}`);
    } catch (error) {
      failed = true;
      console.log(`${file}: ${label}: ${error.message.replace(/\s+/g, " ")}`);
    }
  }
}
process.exit(failed ? 1 : 0);
