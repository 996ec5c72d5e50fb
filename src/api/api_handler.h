// ApiHandler: the control plane's Kubernetes-shaped REST API over the Store, as a pure function
// from request to response (no sockets, so it is unit-tested directly; api_server.h puts it on
// HTTP). Paths, verbs, status codes and error bodies follow the Kubernetes API server:
//
//   /apis/serving.kserve.io/{version}/namespaces/{ns}/{plural}            GET list, POST create
//   /apis/serving.kserve.io/{version}/namespaces/{ns}/{plural}/{name}     GET, PUT, DELETE
//   /apis/serving.kserve.io/{version}/namespaces/{ns}/{plural}/{name}/status   GET, PUT
//   /apis/serving.kserve.io/{version}/{plural}                            GET list (all
//                                       namespaces); create/get/... for cluster-scoped kinds
//   .../inferenceservices/{name}/events     GET: the resource's events (EventList)
//   .../inferenceservices/{name}/revisions  GET: revisions and their replicas (RevisionList)
//   .../inferenceservices/{name}/log?component=predictor   GET: the replicas' log files, text
//   /healthz                                GET: "ok" (never needs the token)
//
// Errors are `Status` objects ({"kind":"Status","status":"Failure","reason":..,"code":..}).
// Thread-safety: Handle may be called concurrently (the Store serialises); the change callback
// is called on the calling thread after each successful write.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "store/store.h"

namespace quiver::api {

struct ApiRequest {
  std::string_view method;
  std::string_view target;         // path and query
  std::string_view content_type;   // of the body: JSON or YAML
  std::string_view authorization;  // the Authorization header, empty when absent
  std::string_view body;
};

struct ApiResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

// Called with the key of every resource created, replaced, deleted or given a new status.
using ChangeCallback = std::function<void(const store::ResourceKey&)>;

struct ApiHandlerOptions {
  // When non-empty, every request but /healthz must carry `Authorization: Bearer <token>`.
  std::string token;
  ChangeCallback on_change;
  // The most of each replica log file the log endpoint returns (its tail).
  size_t max_log_bytes = 1u << 20;
};

class ApiHandler {
 public:
  // `store` is borrowed and must outlive the handler.
  ApiHandler(store::Store* store, ApiHandlerOptions options);

  ApiResponse Handle(const ApiRequest& request) const;

 private:
  store::Store* store_;
  ApiHandlerOptions options_;
};

}  // namespace quiver::api
