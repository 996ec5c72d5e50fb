// RouteIndex: finds which service, component and tag a request is for, from its Host header or
// the path form. Built once per route table (immutable afterwards, so any thread may read it).
//
// Accepted hosts (a ":port" suffix and letter case are ignored), for domain D:
//   {name}.{namespace}.D, {name}.{namespace}, {name}.{namespace}.svc[.cluster.local]
//       → the entry component: the transformer when there is one, else the predictor;
//         `/v1/models/{m}:explain` goes to the explainer when there is one
//   {name}-{predictor|transformer|explainer}.{namespace}[.D|.svc...] → that component directly
//   {tag}-{name}.{namespace}[.D]  → the entry component's revision tagged {tag} (KServe's
//                                   latest-/prev- URLs; latest only with tag routing on)
//   {tag}-{name}-{component}.{namespace}[.D] → that component's revision tagged {tag} (the
//                                   traffic[].url KServe reports for a tag)
//   {graph}.{namespace}[.D|.svc...] → an InferenceGraph (unless a service took the host)
// Path form, for clients that cannot set Host (curl, browsers): /serving/{namespace}/{host
// name part}/{rest} routes {rest} as if Host were {host name part}.{namespace}; no OIP or V1
// path starts with /serving/, so the form cannot shadow a model server path.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"
#include "gateway/route_table.h"

namespace quiver::gateway {

inline constexpr std::string_view kPathFormPrefix = "/serving/";

struct HostRoute {
  int service = -1;
  int component = -1;  // -1: the entry component; else a Component
  std::string tag;     // empty: split by percent
  int graph = -1;      // >= 0: an InferenceGraph of RouteTable::graphs (service unused)
};

// A resolved request: the route and the target to send (the path form's prefix removed).
// `target` views the request's target or a thread-local buffer: use it before the next
// Resolve on the same thread.
struct Resolved {
  const HostRoute* route = nullptr;
  std::string_view target;
};

// True for KServe's explainer route `^/v1/models/[\w-]+:explain$` (a query string is ignored).
bool IsExplainPath(std::string_view target);

class RouteIndex {
 public:
  RouteIndex(const RouteTable& table, std::string domain);

  // Errors are kNotFound with a message naming the host or path and the accepted forms.
  StatusOr<Resolved> Resolve(std::string_view host, std::string_view target) const;

  // The component to send to, given the service, the route's component and the target path.
  // kNotFound when a direct component host names a component the service lacks.
  static StatusOr<Component> SelectComponent(const ServiceRoute& service, const HostRoute& route,
                                             std::string_view target);

  const std::string& domain() const { return domain_; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  const HostRoute* Find(std::string_view host) const;

  std::string domain_;
  std::unordered_map<std::string, HostRoute, Hash, std::equal_to<>> hosts_;
};

}  // namespace quiver::gateway
