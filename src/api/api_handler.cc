#include "api/api_handler.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <optional>
#include <vector>

#include "control/scaling.h"
#include "spec/inference_service.h"
#include "spec/resource.h"

namespace quiver::api {
namespace {

using Json = spec::Json;

constexpr std::string_view kGroup = "serving.kserve.io";
constexpr std::array<std::string_view, 3> kComponents = {"predictor", "transformer", "explainer"};

// Kubernetes' Status object: the one shape of every error this API returns.
ApiResponse Failure(int code, std::string_view reason, std::string message,
                    const spec::KindInfo* kind = nullptr, std::string_view name = {}) {
  Json status = {{"kind", "Status"},
                 {"apiVersion", "v1"},
                 {"metadata", Json::object()},
                 {"status", "Failure"},
                 {"message", std::move(message)},
                 {"reason", reason}};
  if (kind != nullptr) {
    Json details = Json::object();
    if (!name.empty()) details["name"] = name;
    details["group"] = kGroup;
    details["kind"] = kind->plural;
    status["details"] = std::move(details);
  }
  status["code"] = code;
  return {code, status.dump(), "application/json"};
}

ApiResponse Object(int code, const Json& doc) { return {code, doc.dump(), "application/json"}; }

// "inferenceservices.serving.kserve.io", as Kubernetes names a resource type in messages.
std::string TypeName(const spec::KindInfo& kind) {
  return std::string(kind.plural) + "." + std::string(kGroup);
}

// The one place where a store error becomes an HTTP status and a Kubernetes reason.
ApiResponse FromStoreError(const Status& s, const spec::KindInfo& kind, std::string_view name) {
  std::string quoted = TypeName(kind) + " \"" + std::string(name) + "\"";
  switch (s.code()) {
    case StatusCode::kNotFound:
      return Failure(404, "NotFound", quoted + " not found", &kind, name);
    case StatusCode::kAlreadyExists:
      return Failure(409, "AlreadyExists", quoted + " already exists", &kind, name);
    case StatusCode::kFailedPrecondition:
      return Failure(409, "Conflict",
                     "Operation cannot be fulfilled on " + quoted + ": " + s.message(), &kind,
                     name);
    case StatusCode::kInvalidArgument:
      return Failure(400, "BadRequest", s.message(), &kind, name);
    default:
      return Failure(500, "InternalError", s.message(), &kind, name);
  }
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view key) {
  size_t i = 0;
  while (i <= query.size()) {
    size_t j = query.find('&', i);
    if (j == std::string_view::npos) j = query.size();
    std::string_view pair = query.substr(i, j - i);
    size_t eq = pair.find('=');
    std::string_view k = pair.substr(0, eq);
    if (k == key) {
      return eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1));
    }
    i = j + 1;
  }
  return std::nullopt;
}

// What a path names, once parsed.
struct Route {
  const spec::KindInfo* kind = nullptr;
  std::string ns;    // empty: all namespaces (namespaced kinds) or cluster-scoped
  std::string name;  // empty: the collection
  std::string sub;   // "", "status", "events", "revisions", "log"
};

// The body of a create or replace as one validated document, or the error response.
struct ParsedBody {
  Json doc;
  std::optional<ApiResponse> error;
};

bool IsSupportedContentType(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  return type.empty() || type == "application/json" || type == "application/yaml" ||
         type == "application/x-yaml" || type == "text/yaml" || type == "text/plain";
}

ParsedBody ParseOneObject(const ApiRequest& req) {
  ParsedBody out;
  if (!IsSupportedContentType(req.content_type)) {
    out.error = Failure(415, "UnsupportedMediaType",
                        "the body must be JSON or YAML (Content-Type application/json or "
                        "application/yaml), got " +
                            std::string(req.content_type));
    return out;
  }
  auto manifests = spec::ParseManifests(req.body, "request body");
  if (!manifests.ok()) {
    out.error = Failure(400, "BadRequest", manifests.status().message());
    return out;
  }
  if (manifests->size() != 1) {
    out.error = Failure(400, "BadRequest",
                        "the request body must hold exactly one object, found " +
                            std::to_string(manifests->size()));
    return out;
  }
  out.doc = std::move((*manifests)[0].doc);
  if (!out.doc.is_object()) {
    out.error = Failure(400, "BadRequest", "the request body must be an object");
  }
  return out;
}

}  // namespace

ApiHandler::ApiHandler(store::Store* store, ApiHandlerOptions options)
    : store_(store), options_(std::move(options)) {}

ApiResponse ApiHandler::Handle(const ApiRequest& req) const {
  std::string_view target = req.target;
  std::string_view query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  auto segments = SplitPath(target);

  if (segments.size() == 1 && segments[0] == "healthz") {
    if (req.method != "GET" && req.method != "HEAD") {
      return Failure(405, "MethodNotAllowed", "/healthz answers GET only");
    }
    return {200, "ok", "text/plain"};
  }

  if (!options_.token.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    std::string_view auth = req.authorization;
    if (auth.substr(0, kBearer.size()) != kBearer ||
        !ConstantTimeEquals(auth.substr(kBearer.size()), options_.token)) {
      return Failure(401, "Unauthorized",
                     auth.empty() ? "Unauthorized: this API needs an Authorization: Bearer token"
                                  : "Unauthorized: the bearer token is not valid");
    }
  }

  auto not_found = [&] {
    return Failure(404, "NotFound",
                   "the server could not find the requested resource (" + std::string(req.method) +
                       " " + std::string(target) + ")");
  };
  if (segments.size() < 4 || segments[0] != "apis" || segments[1] != kGroup) return not_found();
  std::string_view version = segments[2];
  Route route;
  size_t i = 3;
  if (segments[i] == "namespaces") {
    if (segments.size() < 6) return not_found();
    route.ns = PercentDecode(segments[4]);
    i = 5;
  }
  const spec::KindInfo* kind = spec::FindKind(segments[i]);
  if (kind == nullptr || kind->plural != segments[i]) return not_found();
  route.kind = kind;
  if (kind->version != version) {
    return Failure(404, "NotFound",
                   TypeName(*kind) + " is served at version " + std::string(kind->version) +
                       ", not " + std::string(version) + " (use /apis/" + std::string(kGroup) +
                       "/" + std::string(kind->version) + "/...)",
                   kind);
  }
  if (!kind->namespaced && !route.ns.empty()) {
    return Failure(404, "NotFound",
                   TypeName(*kind) + " is cluster-scoped; its path has no namespaces/{ns}", kind);
  }
  if (segments.size() > i + 1) route.name = PercentDecode(segments[i + 1]);
  if (segments.size() > i + 2) route.sub = std::string(segments[i + 2]);
  if (segments.size() > i + 3) return not_found();
  if (!route.sub.empty() && route.sub != "status") {
    bool isvc_only = route.sub == "revisions" || route.sub == "log";
    if ((route.sub != "events" && !isvc_only) ||
        (isvc_only && kind->kind != spec::Kind::kInferenceService)) {
      return not_found();
    }
  }
  // A namespaced kind addressed without a namespace: only the cross-namespace list.
  bool all_namespaces = kind->namespaced && route.ns.empty();
  if (all_namespaces && !(route.name.empty() && req.method == "GET")) {
    return Failure(404, "NotFound",
                   TypeName(*kind) + " is namespaced: use /apis/" + std::string(kGroup) + "/" +
                       std::string(kind->version) + "/namespaces/{namespace}/" +
                       std::string(kind->plural) + "/...",
                   kind);
  }

  store::ResourceKey key{std::string(kind->name), route.ns, route.name};
  auto method_not_allowed = [&] {
    return Failure(405, "MethodNotAllowed",
                   std::string(req.method) + " is not supported on " + std::string(target), kind);
  };
  auto notify = [&](const store::ResourceKey& k) {
    if (options_.on_change) options_.on_change(k);
  };

  // The body of POST/PUT: one object of this kind, in this namespace, validated by KServe's
  // rules. Store-owned metadata is dropped before validation (a client may send back what it
  // read); resourceVersion is kept aside for the conflict check.
  auto validated_body = [&](std::optional<std::string>* resource_version) -> ParsedBody {
    ParsedBody body = ParseOneObject(req);
    if (body.error) return body;
    Json& doc = body.doc;
    std::string doc_kind = doc.value("kind", "");
    if (!doc_kind.empty() && doc_kind != kind->name) {
      body.error =
          Failure(400, "BadRequest",
                  "the body's kind " + doc_kind + " does not match the path (" +
                      std::string(kind->plural) + ", kind " + std::string(kind->name) + ")",
                  kind);
      return body;
    }
    if (doc.contains("metadata") && doc["metadata"].is_object()) {
      Json& meta = doc["metadata"];
      if (meta.contains("namespace") && meta["namespace"].is_string() && kind->namespaced &&
          meta["namespace"] != route.ns) {
        body.error = Failure(
            400, "BadRequest",
            "the namespace of the provided object (" + meta["namespace"].get<std::string>() +
                ") does not match the namespace sent on the request (" + route.ns + ")",
            kind);
        return body;
      }
      if (meta.contains("resourceVersion")) {
        const Json& rv = meta["resourceVersion"];
        *resource_version = rv.is_string() ? rv.get<std::string>() : rv.dump();
      }
      for (const char* owned : {"uid", "generation", "resourceVersion", "creationTimestamp",
                                "deletionTimestamp", "managedFields", "selfLink"}) {
        meta.erase(owned);
      }
    }
    doc.erase("status");
    Status valid = spec::DefaultAndValidate(doc, route.ns.empty() ? "default" : route.ns);
    if (valid.ok() && kind->name == "InferenceService") {
      // The autoscaling annotations are Knative's, outside the spec: checked here so that a
      // bad value is refused at apply time instead of surfacing later in the status.
      auto view = spec::InferenceServiceFromJson(doc);
      valid = view.ok() ? control::ValidateScaling(*view) : view.status();
    }
    std::string name;
    if (doc.contains("metadata") && doc["metadata"].is_object()) {
      name = doc["metadata"].value("name", "");
    }
    if (!valid.ok()) {
      body.error = Failure(422, "Invalid",
                           std::string(kind->name) + "." + std::string(kGroup) + " \"" + name +
                               "\" is invalid: " + valid.message(),
                           kind, name);
      return body;
    }
    if (!route.name.empty() && name != route.name) {
      body.error = Failure(400, "BadRequest",
                           "the name of the object (" + name +
                               ") does not match the name on the URL (" + route.name + ")",
                           kind, name);
      return body;
    }
    if (*resource_version) doc["metadata"]["resourceVersion"] = **resource_version;
    return body;
  };

  // --- Collections.
  if (route.name.empty()) {
    if (req.method == "GET") {
      auto list = store_->List(kind->name, route.ns);
      if (!list.ok()) return FromStoreError(list.status(), *kind, "");
      Json items = Json::array();
      for (auto& item : list->items) items.push_back(std::move(item));
      Json out = {{"apiVersion", std::string(kGroup) + "/" + std::string(kind->version)},
                  {"kind", std::string(kind->name) + "List"},
                  {"metadata", {{"resourceVersion", std::to_string(list->resource_version)}}},
                  {"items", std::move(items)}};
      return Object(200, out);
    }
    if (req.method == "POST") {
      std::optional<std::string> rv;
      ParsedBody body = validated_body(&rv);
      if (body.error) return *body.error;
      if (rv) {
        return Failure(400, "BadRequest",
                       "resourceVersion should not be set on objects to be created", kind);
      }
      auto created = store_->Create(body.doc);
      if (!created.ok()) {
        return FromStoreError(created.status(), *kind, body.doc["metadata"].value("name", ""));
      }
      notify(store::KeyOf(*created));
      return Object(201, *created);
    }
    return method_not_allowed();
  }

  // --- Sub-resources.
  if (route.sub == "status") {
    if (req.method == "GET") {
      auto got = store_->Get(key);
      return got.ok() ? Object(200, *got) : FromStoreError(got.status(), *kind, route.name);
    }
    if (req.method != "PUT") return method_not_allowed();
    ParsedBody body = ParseOneObject(req);
    if (body.error) return *body.error;
    if (!body.doc.contains("status") || !body.doc["status"].is_object()) {
      return Failure(422, "Invalid",
                     std::string(kind->name) + "." + std::string(kGroup) + " \"" + route.name +
                         "\" is invalid: status: Required value: an object",
                     kind, route.name);
    }
    std::string rv;
    if (body.doc.contains("metadata") && body.doc["metadata"].is_object()) {
      const Json& v = body.doc["metadata"].value("resourceVersion", Json());
      if (v.is_string()) rv = v.get<std::string>();
    }
    auto updated = store_->UpdateStatus(key, body.doc["status"], rv);
    if (!updated.ok()) return FromStoreError(updated.status(), *kind, route.name);
    notify(key);
    return Object(200, *updated);
  }
  if (!route.sub.empty()) {
    if (req.method != "GET") return method_not_allowed();
    auto got = store_->Get(key);
    if (!got.ok()) return FromStoreError(got.status(), *kind, route.name);
    if (route.sub == "events") {
      auto events = store_->ListEvents(key);
      if (!events.ok()) return FromStoreError(events.status(), *kind, route.name);
      Json items = Json::array();
      for (const auto& e : *events) {
        items.push_back({{"type", e.type},
                         {"reason", e.reason},
                         {"message", e.message},
                         {"lastTimestamp", e.time},
                         {"involvedObject",
                          {{"kind", kind->name}, {"namespace", route.ns}, {"name", route.name}}}});
      }
      return Object(200, {{"apiVersion", "v1"}, {"kind", "EventList"}, {"items", items}});
    }
    if (route.sub == "revisions") {
      Json items = Json::array();
      for (std::string_view component : kComponents) {
        store::ComponentKey ck{route.ns, route.name, std::string(component)};
        auto revisions = store_->ListRevisions(ck);
        auto replicas = store_->ListReplicas(ck);
        if (!revisions.ok()) return FromStoreError(revisions.status(), *kind, route.name);
        if (!replicas.ok()) return FromStoreError(replicas.status(), *kind, route.name);
        for (const auto& rev : *revisions) {
          Json reps = Json::array();
          for (const auto& r : *replicas) {
            if (r.revision != rev.name) continue;
            reps.push_back({{"index", r.index},
                            {"pid", r.pid},
                            {"ports", r.ports},
                            {"logPath", r.log_path},
                            {"state", r.state}});
          }
          items.push_back({{"component", component},
                           {"name", rev.name},
                           {"ordinal", rev.ordinal},
                           {"fingerprint", rev.fingerprint},
                           {"created", rev.created},
                           {"state", rev.state},
                           {"replicas", std::move(reps)}});
        }
      }
      return Object(200, {{"apiVersion", std::string(kGroup) + "/" + std::string(kind->version)},
                          {"kind", "RevisionList"},
                          {"items", std::move(items)}});
    }
    // route.sub == "log"
    std::string component = QueryParam(query, "component").value_or("predictor");
    if (std::find(kComponents.begin(), kComponents.end(), component) == kComponents.end()) {
      return Failure(
          400, "BadRequest",
          "component must be predictor, transformer or explainer, got \"" + component + "\"", kind,
          route.name);
    }
    auto replicas = store_->ListReplicas({route.ns, route.name, component});
    if (!replicas.ok()) return FromStoreError(replicas.status(), *kind, route.name);
    if (replicas->empty()) {
      return Failure(404, "NotFound",
                     "inferenceservice " + route.ns + "/" + route.name + " has no " + component +
                         " replicas yet",
                     kind, route.name);
    }
    std::string text;
    for (const auto& r : *replicas) {
      if (replicas->size() > 1) {
        text += "==> " + r.revision + " replica " + std::to_string(r.index) + " (" + r.log_path +
                ") <==\n";
      }
      std::ifstream in(r.log_path, std::ios::binary | std::ios::ate);
      if (!in) {
        text += "(log file " + r.log_path + " cannot be read)\n";
        continue;
      }
      auto size = static_cast<size_t>(in.tellg());
      size_t skip = size > options_.max_log_bytes ? size - options_.max_log_bytes : 0;
      in.seekg(static_cast<std::streamoff>(skip));
      std::string content(size - skip, '\0');
      in.read(content.data(), static_cast<std::streamsize>(content.size()));
      if (skip > 0) text += "(first " + std::to_string(skip) + " bytes omitted)\n";
      text += content;
      if (!content.empty() && content.back() != '\n') text += '\n';
    }
    return {200, std::move(text), "text/plain; charset=utf-8"};
  }

  // --- One object.
  if (req.method == "GET") {
    auto got = store_->Get(key);
    return got.ok() ? Object(200, *got) : FromStoreError(got.status(), *kind, route.name);
  }
  if (req.method == "PUT") {
    std::optional<std::string> rv;
    ParsedBody body = validated_body(&rv);
    if (body.error) return *body.error;
    auto replaced = store_->Replace(body.doc);
    if (!replaced.ok()) return FromStoreError(replaced.status(), *kind, route.name);
    notify(key);
    return Object(200, *replaced);
  }
  if (req.method == "DELETE") {
    auto deleted = store_->Delete(key);
    if (!deleted.ok()) return FromStoreError(deleted.status(), *kind, route.name);
    notify(key);
    return Object(200, *deleted);
  }
  return method_not_allowed();
}

}  // namespace quiver::api
