#include "spec/resource.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quiver::spec {
namespace {

using ::testing::HasSubstr;

std::vector<Manifest> Parse(std::string_view text) {
  StatusOr<std::vector<Manifest>> manifests = ParseManifests(text, "test.yaml");
  EXPECT_TRUE(manifests.ok()) << manifests.status().ToString();
  return manifests.ok() ? *manifests : std::vector<Manifest>{};
}

std::string Error(std::string_view text) {
  StatusOr<std::vector<Manifest>> manifests = ParseManifests(text, "test.yaml");
  EXPECT_FALSE(manifests.ok());
  return manifests.ok() ? "" : manifests.status().message();
}

Json ValidDoc(std::string_view text) {
  std::vector<Manifest> manifests = Parse(text);
  EXPECT_EQ(manifests.size(), 1u);
  Json doc = manifests.empty() ? Json() : manifests[0].doc;
  Status status = DefaultAndValidate(doc);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return doc;
}

std::string ValidationError(std::string_view text) {
  std::vector<Manifest> manifests = Parse(text);
  if (manifests.empty()) return "no document";
  Status status = DefaultAndValidate(manifests[0].doc);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  return status.message();
}

TEST(KindTable, FindsKindsAsKubectlDoes) {
  ASSERT_EQ(AllKinds().size(), 5u);
  for (std::string_view name : {"InferenceService", "inferenceservice", "inferenceservices", "isvc",
                                "inferenceservices.serving.kserve.io"}) {
    const KindInfo* info = FindKind(name);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_EQ(info->kind, Kind::kInferenceService);
  }
  EXPECT_EQ(FindKind("ig")->kind, Kind::kInferenceGraph);
  EXPECT_EQ(FindKind("tm")->kind, Kind::kTrainedModel);
  EXPECT_EQ(FindKind("clusterservingruntimes")->kind, Kind::kClusterServingRuntime);
  EXPECT_FALSE(FindKind("clusterservingruntimes")->namespaced);
  EXPECT_EQ(InfoOf(Kind::kInferenceService).version, "v1beta1");
  EXPECT_EQ(InfoOf(Kind::kServingRuntime).version, "v1alpha1");
  EXPECT_EQ(FindKind("pods"), nullptr);
}

TEST(ParseManifests, KeepsScalarTypesAsWritten) {
  std::vector<Manifest> m = Parse(R"(
a: 1
b: "1"
c: 0.5
d: true
e: null
f: ~
g:
h: 'true'
i: -7
j: 1e3
k: 0x1F
l: hello
m: 18446744073709551615
n: !!str 5
)");
  ASSERT_EQ(m.size(), 1u);
  const Json& d = m[0].doc;
  EXPECT_TRUE(d["a"].is_number_integer());
  EXPECT_EQ(d["a"], 1);
  EXPECT_TRUE(d["b"].is_string());
  EXPECT_EQ(d["b"], "1");
  EXPECT_TRUE(d["c"].is_number_float());
  EXPECT_DOUBLE_EQ(d["c"].get<double>(), 0.5);
  EXPECT_EQ(d["d"], true);
  EXPECT_TRUE(d["e"].is_null());
  EXPECT_TRUE(d["f"].is_null());
  EXPECT_TRUE(d["g"].is_null());
  EXPECT_EQ(d["h"], "true");
  EXPECT_EQ(d["i"], -7);
  EXPECT_TRUE(d["j"].is_number_float());
  EXPECT_EQ(d["k"], 31);
  EXPECT_EQ(d["l"], "hello");
  EXPECT_TRUE(d["m"].is_number_unsigned());
  EXPECT_EQ(d["n"], "5");
  // Keys keep the user's order.
  EXPECT_EQ(d.begin().key(), "a");
}

TEST(ParseManifests, ReadsJsonAndMultipleDocuments) {
  std::vector<Manifest> json =
      Parse(R"({"kind": "InferenceService", "n": 1, "s": "1", "x": [1.5, null]})");
  ASSERT_EQ(json.size(), 1u);
  EXPECT_EQ(json[0].doc["n"], 1);
  EXPECT_EQ(json[0].doc["s"], "1");
  EXPECT_TRUE(json[0].doc["x"][1].is_null());

  std::vector<Manifest> docs = Parse("---\na: 1\n---\n---\nb: 2\n...\n");
  ASSERT_EQ(docs.size(), 2u);  // the empty document is skipped
  EXPECT_EQ(docs[0].doc["a"], 1);
  EXPECT_EQ(docs[1].doc["b"], 2);
  EXPECT_EQ(docs[0].source, "test.yaml, document 1");
  EXPECT_EQ(docs[1].source, "test.yaml, document 3");
}

TEST(ParseManifests, ExpandsKindList) {
  std::vector<Manifest> docs = Parse(R"(
apiVersion: v1
kind: List
items:
  - {kind: InferenceService, metadata: {name: a}}
  - {kind: InferenceGraph, metadata: {name: b}}
---
kind: TrainedModel
)");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].doc["metadata"]["name"], "a");
  EXPECT_EQ(docs[1].doc["kind"], "InferenceGraph");
  EXPECT_EQ(docs[1].source, "test.yaml, document 1, items[1]");
  EXPECT_EQ(docs[2].doc["kind"], "TrainedModel");
}

TEST(ParseManifests, SupportsMergeKeys) {
  std::vector<Manifest> docs = Parse(R"(
base: &base {minReplicas: 1, maxReplicas: 3}
predictor:
  <<: *base
  maxReplicas: 5
)");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].doc["predictor"]["minReplicas"], 1);
  EXPECT_EQ(docs[0].doc["predictor"]["maxReplicas"], 5);
  EXPECT_FALSE(docs[0].doc["predictor"].contains("<<"));
}

TEST(ParseManifests, ErrorsNameDocumentAndLine) {
  std::string syntax = Error("a: 1\n---\nb: [1, 2\nc: 3\n");
  EXPECT_THAT(syntax, HasSubstr("test.yaml, document 2"));
  EXPECT_THAT(syntax, HasSubstr("line 4"));
  std::string duplicate = Error("a: 1\nb:\n  c: 1\n  c: 2\n");
  EXPECT_THAT(duplicate, HasSubstr("line 4"));
  EXPECT_THAT(duplicate, HasSubstr("duplicate key \"c\""));
  EXPECT_THAT(Error("- 1\n- 2\n"), HasSubstr("expected a mapping with apiVersion and kind"));
  EXPECT_THAT(Error("a: !!int abc\n"), HasSubstr("is not an integer"));
  EXPECT_THAT(Error("a: !custom x\n"), HasSubstr("unsupported tag"));
}

TEST(ToYaml, RoundTripsEveryType) {
  Json doc = Json::parse(R"({
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "x", "annotations": {"prometheus.kserve.io/port": "8080", "b": "true",
                                               "c": "", "d": "null", "e": "0x10", "f": "1.5"}},
    "spec": {"z": 1, "a": -2, "f": 0.25, "g": 1.0, "h": 1e20, "t": true, "n": null,
             "empty_map": {}, "empty_list": [], "list": [1, "1", {"k": "v"}, [true]],
             "multi": "line one\nline two", "template": "--model_name={{.Name}}",
             "colon": "a: b", "hash": "x #y", "dash": "- x", "star": "*alias", "unicode": "héllo",
             "spaces": "  padded  "}
  })",
                         nullptr, true, false);
  std::string yaml = ToYaml(doc);
  std::vector<Manifest> back = Parse(yaml);
  ASSERT_EQ(back.size(), 1u) << yaml;
  EXPECT_EQ(back[0].doc, doc) << yaml;
  // Keys stay in document order, not sorted.
  EXPECT_LT(yaml.find("z: 1"), yaml.find("a: -2")) << yaml;
  EXPECT_THAT(yaml, HasSubstr("prometheus.kserve.io/port: \"8080\""));
}

TEST(ToYaml, QuotesWhatKubectlsYaml11WouldNotReadAsAString) {
  Json doc = Json::parse(R"({"a": "on", "b": "yes", "c": "0755", "d": "1:30", "e": "N",
                             "f": "script\nsecond line\n", "g": "plain"})",
                         nullptr, true, false);
  std::string yaml = ToYaml(doc);
  EXPECT_THAT(yaml, HasSubstr("a: \"on\""));
  EXPECT_THAT(yaml, HasSubstr("b: \"yes\""));
  EXPECT_THAT(yaml, HasSubstr("c: \"0755\""));
  EXPECT_THAT(yaml, HasSubstr("d: \"1:30\""));
  EXPECT_THAT(yaml, HasSubstr("e: \"N\""));
  EXPECT_THAT(yaml, HasSubstr("f: |\n  script\n  second line\n"));  // a literal block
  EXPECT_THAT(yaml, HasSubstr("g: plain"));
  std::vector<Manifest> back = Parse(yaml);
  ASSERT_EQ(back.size(), 1u) << yaml;
  EXPECT_EQ(back[0].doc, doc) << yaml;
}

TEST(DefaultAndValidate, ChecksKindApiVersionAndTopLevelFields) {
  EXPECT_THAT(ValidationError("kind: Pod\n"), HasSubstr("kind: unknown kind \"Pod\""));
  EXPECT_THAT(ValidationError("apiVersion: v1\n"), HasSubstr("kind: required"));
  EXPECT_THAT(ValidationError(R"(
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceService
metadata: {name: x}
spec: {predictor: {model: {modelFormat: {name: sklearn}}}}
)"),
              HasSubstr("apiVersion: must be serving.kserve.io/v1beta1 for InferenceService, "
                        "got string \"serving.kserve.io/v1alpha1\""));
  EXPECT_THAT(ValidationError(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: x}
spce: {}
spec: {predictor: {model: {modelFormat: {name: sklearn}}}}
)"),
              HasSubstr("spce: unknown field"));
}

TEST(DefaultAndValidate, ChecksMetadata) {
  const char* base = R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
spec: {predictor: {model: {modelFormat: {name: sklearn}}}}
metadata:
)";
  auto with_meta = [&](std::string meta) { return ValidationError(std::string(base) + meta); };
  EXPECT_THAT(with_meta("  namespace: a\n"), HasSubstr("metadata.name: required"));
  EXPECT_THAT(with_meta("  name: Sklearn-Iris\n"),
              HasSubstr("metadata.name: must be a DNS-1035 label"));
  EXPECT_THAT(with_meta("  name: 1iris\n"), HasSubstr("got \"1iris\""));
  EXPECT_THAT(with_meta("  name: iris-\n"), HasSubstr("metadata.name: must be a DNS-1035"));
  EXPECT_THAT(with_meta("  name: " + std::string(64, 'a') + "\n"),
              HasSubstr("at most 63 characters"));
  EXPECT_THAT(with_meta("  name: iris\n  namespace: My_NS\n"),
              HasSubstr("metadata.namespace: must be a DNS-1123 label"));
  EXPECT_THAT(with_meta("  name: iris\n  annotations: {prometheus.kserve.io/port: 8080}\n"),
              HasSubstr("metadata.annotations[\"prometheus.kserve.io/port\"]: must be a string "
                        "(quote it), got integer 8080"));
  EXPECT_THAT(with_meta("  name: iris\n  nmae: x\n"), HasSubstr("metadata.nmae: unknown field"));
}

TEST(DefaultAndValidate, DefaultsNamespaceAndDropsItForClusterKinds) {
  Json isvc = ValidDoc(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris}
spec: {predictor: {model: {modelFormat: {name: sklearn}}}}
)");
  EXPECT_EQ(isvc["metadata"]["namespace"], "default");
  EXPECT_EQ(KindOf(isvc), Kind::kInferenceService);

  std::vector<Manifest> m = Parse(R"(
apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata: {name: my.runtime, namespace: team}
spec:
  supportedModelFormats: [{name: sklearn}]
  containers: [{name: c, command: [serve]}]
)");
  Status status = DefaultAndValidate(m[0].doc, "team");
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_FALSE(m[0].doc["metadata"].contains("namespace"));
  EXPECT_EQ(KindOf(m[0].doc), Kind::kClusterServingRuntime);

  Json other_ns = Parse(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris}
spec: {predictor: {model: {modelFormat: {name: sklearn}}}}
)")[0]
                      .doc;
  ASSERT_TRUE(DefaultAndValidate(other_ns, "team").ok());
  EXPECT_EQ(other_ns["metadata"]["namespace"], "team");
}

TEST(DefaultAndValidate, ReportsAllErrorsAtOnce) {
  std::string error = ValidationError(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris}
spec:
  predictor:
    minReplicas: -1
    canaryTrafficPercent: 101
    model: {modelFormat: {name: sklearn}}
)");
  EXPECT_THAT(error, HasSubstr("spec.predictor.minReplicas: must be >= 0, got -1"));
  EXPECT_THAT(error, HasSubstr("; spec.predictor.canaryTrafficPercent: must be between 0 and "
                               "100, got 101"));
}

}  // namespace
}  // namespace quiver::spec
