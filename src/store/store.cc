#include "store/store.h"

#include <ctime>
#include <utility>

#include "common/system.h"

namespace quiver::store {

std::string ResourceKey::ToString() const { return kind + "/" + ns + "/" + name; }

std::string ComponentKey::ToString() const { return "isvc/" + ns + "/" + isvc + "/" + component; }

ResourceKey KeyOf(const Json& doc) {
  ResourceKey key;
  key.kind = doc.value("kind", "");
  if (auto m = doc.find("metadata"); m != doc.end() && m->is_object()) {
    key.ns = m->value("namespace", "");
    key.name = m->value("name", "");
  }
  return key;
}

// RAII over a cached sqlite3_stmt: binds by position (1-based) and resets on destruction so the
// statement can be reused by the next caller.
class Store::Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  Statement& Bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW → true, SQLITE_DONE → false; anything else is an error.
  StatusOr<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Internal(std::string("sqlite: ") + sqlite3_errmsg(sqlite3_db_handle(stmt_)));
  }
  Status Run() {
    auto r = Step();
    return r.ok() ? Status::Ok() : r.status();
  }
  std::string Text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3_stmt* stmt_;
};

namespace {

constexpr const char* kSchemaV1[] = {
    "CREATE TABLE resources ("
    " kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
    " uid TEXT NOT NULL, generation INTEGER NOT NULL, resource_version INTEGER NOT NULL,"
    " creation_timestamp TEXT NOT NULL, deleting INTEGER NOT NULL DEFAULT 0,"
    " document TEXT NOT NULL, status TEXT NOT NULL,"
    " PRIMARY KEY (kind, namespace, name)) WITHOUT ROWID",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO counters VALUES ('resource_version', 0)",
    "CREATE TABLE revisions ("
    " component_key TEXT NOT NULL, ordinal INTEGER NOT NULL, name TEXT NOT NULL,"
    " fingerprint TEXT NOT NULL, spec TEXT NOT NULL, created TEXT NOT NULL,"
    " state TEXT NOT NULL, PRIMARY KEY (component_key, ordinal))",
    "CREATE UNIQUE INDEX revisions_by_name ON revisions (component_key, name)",
    "CREATE TABLE replicas ("
    " component_key TEXT NOT NULL, revision TEXT NOT NULL, replica_index INTEGER NOT NULL,"
    " pid INTEGER NOT NULL, process_start_time INTEGER NOT NULL, ports TEXT NOT NULL,"
    " log_path TEXT NOT NULL, state TEXT NOT NULL,"
    " PRIMARY KEY (component_key, revision, replica_index))",
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, resource_key TEXT NOT NULL, time TEXT NOT NULL,"
    " type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL)",
    "CREATE INDEX events_by_resource ON events (resource_key, id)",
};

std::string FormatTime(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

StatusOr<Json> ParseColumn(const std::string& text, std::string_view what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Internal("stored " + std::string(what) + " is not valid JSON");
  return j;
}

// The user-owned part of metadata; everything else is the store's.
constexpr const char* kUserMetadata[] = {"labels", "annotations", "finalizers"};

bool HasFinalizers(const Json& obj) {
  auto& m = obj["metadata"];
  auto f = m.find("finalizers");
  return f != m.end() && f->is_array() && !f->empty();
}

std::string DisplayKey(const ResourceKey& key) {
  return key.ns.empty() ? key.kind + " " + key.name : key.kind + " " + key.ns + "/" + key.name;
}

}  // namespace

Store::Store(StoreOptions options, sqlite3* db) : options_(std::move(options)), db_(db) {}

Store::~Store() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

StatusOr<std::unique_ptr<Store>> Store::Open(StoreOptions options) {
  if (!options.new_uid) options.new_uid = [] { return NewUuid(); };
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(options.path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Unavailable("cannot open state database " + options.path + ": " + msg);
  }
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  std::unique_ptr<Store> store(new Store(std::move(options), db));
  std::lock_guard lock(store->mu_);
  // WAL lets readers proceed during a write; NORMAL syncs at checkpoints only, which survives
  // a crash of the process (what we guard against) though not a power cut mid-checkpoint.
  {
    QUIVER_ASSIGN_OR_RETURN(auto stmt, store->Prepare("PRAGMA journal_mode=WAL"));
    QUIVER_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row || stmt.Text(0) != "wal") {
      return Unavailable("state database " + store->options_.path +
                         ": cannot switch to WAL journal mode (is it on a network file system?)");
    }
  }
  QUIVER_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=NORMAL"));
  QUIVER_RETURN_IF_ERROR(store->Migrate());
  return store;
}

Status Store::SqlError(std::string_view what) const {
  return Internal("state database " + options_.path + ": " + std::string(what) + ": " +
                  sqlite3_errmsg(db_));
}

Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Internal("state database " + options_.path + ": " + msg + " (in: " + sql + ")");
  }
  return Status::Ok();
}

StatusOr<Store::Statement> Store::Prepare(const char* sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      return SqlError(std::string("prepare ") + sql);
    }
    it = statements_.emplace(sql, stmt).first;
  }
  return Statement(it->second);
}

Status Store::InTransaction(const std::function<Status()>& body) {
  QUIVER_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status s = body();
  if (!s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  Status c = Exec("COMMIT");
  if (!c.ok()) (void)Exec("ROLLBACK");
  return c;
}

Status Store::Migrate() {
  int64_t version = 0;
  {
    QUIVER_ASSIGN_OR_RETURN(auto stmt, Prepare("PRAGMA user_version"));
    QUIVER_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (row) version = stmt.Int(0);
  }
  if (version > kSchemaVersion) {
    return FailedPrecondition("state database " + options_.path + " has schema version " +
                              std::to_string(version) + ", newer than this quiver's (" +
                              std::to_string(kSchemaVersion) + "); use a newer quiver");
  }
  if (version == kSchemaVersion) return Status::Ok();
  return InTransaction([&]() -> Status {
    // Later schema versions add steps here, each from version N to N+1.
    if (version < 1) {
      for (const char* sql : kSchemaV1) QUIVER_RETURN_IF_ERROR(Exec(sql));
    }
    return Exec("PRAGMA user_version = 1");
  });
}

std::string Store::Now() const { return FormatTime(options_.clock()); }

StatusOr<int64_t> Store::NextResourceVersion() {
  QUIVER_ASSIGN_OR_RETURN(
      auto stmt, Prepare("UPDATE counters SET value = value + 1 WHERE name = 'resource_version' "
                         "RETURNING value"));
  QUIVER_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return SqlError("resource_version counter missing");
  return stmt.Int(0);
}

StatusOr<int64_t> Store::CurrentResourceVersion() {
  std::lock_guard lock(mu_);
  QUIVER_ASSIGN_OR_RETURN(auto stmt,
                          Prepare("SELECT value FROM counters WHERE name = 'resource_version'"));
  QUIVER_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Int(0) : 0;
}

StatusOr<std::optional<Json>> Store::Load(const ResourceKey& key) {
  QUIVER_ASSIGN_OR_RETURN(
      auto stmt,
      Prepare("SELECT uid, generation, resource_version, creation_timestamp, document, status "
              "FROM resources WHERE kind = ?1 AND namespace = ?2 AND name = ?3"));
  stmt.Bind(1, key.kind).Bind(2, key.ns).Bind(3, key.name);
  QUIVER_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<Json>();
  QUIVER_ASSIGN_OR_RETURN(Json doc, ParseColumn(stmt.Text(4), "document"));
  QUIVER_ASSIGN_OR_RETURN(Json status, ParseColumn(stmt.Text(5), "status"));
  // The columns are authoritative for the store-owned fields.
  auto& m = doc["metadata"];
  m["uid"] = stmt.Text(0);
  m["generation"] = stmt.Int(1);
  m["resourceVersion"] = std::to_string(stmt.Int(2));
  m["creationTimestamp"] = stmt.Text(3);
  doc["status"] = std::move(status);
  return std::optional<Json>(std::move(doc));
}

Status Store::Write(const Json& object, bool insert) {
  ResourceKey key = KeyOf(object);
  const auto& m = object["metadata"];
  Json document = object;
  document.erase("status");
  auto stmt_or = insert ? Prepare(
                              "INSERT INTO resources (kind, namespace, name, uid, generation, "
                              "resource_version, creation_timestamp, deleting, document, status)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
                        : Prepare(
                              "UPDATE resources SET uid = ?4, generation = ?5, "
                              "resource_version = ?6, creation_timestamp = ?7, deleting = ?8, "
                              "document = ?9, status = ?10 "
                              "WHERE kind = ?1 AND namespace = ?2 AND name = ?3");
  if (!stmt_or.ok()) return stmt_or.status();
  auto& stmt = *stmt_or;
  stmt.Bind(1, key.kind).Bind(2, key.ns).Bind(3, key.name);
  stmt.Bind(4, m["uid"].get<std::string>());
  stmt.Bind(5, m["generation"].get<int64_t>());
  stmt.Bind(6, std::stoll(m["resourceVersion"].get<std::string>()));
  stmt.Bind(7, m["creationTimestamp"].get<std::string>());
  stmt.Bind(8, static_cast<int64_t>(m.contains("deletionTimestamp") ? 1 : 0));
  stmt.Bind(9, document.dump());
  stmt.Bind(10, object.contains("status") ? object["status"].dump() : std::string("{}"));
  return stmt.Run();
}

Status Store::Remove(const ResourceKey& key) {
  {
    QUIVER_ASSIGN_OR_RETURN(
        auto stmt,
        Prepare("DELETE FROM resources WHERE kind = ?1 AND namespace = ?2 AND name = ?3"));
    QUIVER_RETURN_IF_ERROR(stmt.Bind(1, key.kind).Bind(2, key.ns).Bind(3, key.name).Run());
  }
  QUIVER_ASSIGN_OR_RETURN(auto stmt, Prepare("DELETE FROM events WHERE resource_key = ?1"));
  return stmt.Bind(1, key.ToString()).Run();
}

StatusOr<Json> Store::Create(const Json& doc) {
  ResourceKey key = KeyOf(doc);
  if (key.kind.empty() || key.name.empty()) {
    return InvalidArgument("a resource needs kind and metadata.name");
  }
  std::lock_guard lock(mu_);
  Json result;
  QUIVER_RETURN_IF_ERROR(InTransaction([&]() -> Status {
    QUIVER_ASSIGN_OR_RETURN(auto existing, Load(key));
    if (existing) return {StatusCode::kAlreadyExists, DisplayKey(key) + " already exists"};
    QUIVER_ASSIGN_OR_RETURN(int64_t rv, NextResourceVersion());
    Json meta = Json::object();
    meta["name"] = key.name;
    if (!key.ns.empty()) meta["namespace"] = key.ns;
    const Json& in = doc["metadata"];
    for (const char* field : kUserMetadata) {
      if (in.contains(field)) meta[field] = in[field];
    }
    meta["uid"] = options_.new_uid();
    meta["generation"] = 1;
    meta["resourceVersion"] = std::to_string(rv);
    meta["creationTimestamp"] = Now();
    result = Json::object();
    result["apiVersion"] = doc.value("apiVersion", "");
    result["kind"] = key.kind;
    result["metadata"] = std::move(meta);
    result["spec"] = doc.contains("spec") ? doc["spec"] : Json::object();
    result["status"] = Json::object();
    return Write(result, /*insert=*/true);
  }));
  return result;
}

StatusOr<Json> Store::Replace(const Json& doc) {
  ResourceKey key = KeyOf(doc);
  std::lock_guard lock(mu_);
  Json result;
  QUIVER_RETURN_IF_ERROR(InTransaction([&]() -> Status {
    QUIVER_ASSIGN_OR_RETURN(auto existing, Load(key));
    if (!existing) return NotFound(DisplayKey(key) + " not found");
    Json& current = *existing;
    const Json& in = doc["metadata"];
    std::string stored_version = current["metadata"]["resourceVersion"];
    if (in.contains("resourceVersion") && in["resourceVersion"] != stored_version) {
      return FailedPrecondition(
          "the object has been modified; please apply your changes to the latest version and "
          "try again (resourceVersion " +
          (in["resourceVersion"].is_string() ? in["resourceVersion"].get<std::string>()
                                             : in["resourceVersion"].dump()) +
          ", stored " + stored_version + ")");
    }
    Json next = current;
    next["apiVersion"] = doc.value("apiVersion", current.value("apiVersion", ""));
    auto& meta = next["metadata"];
    for (const char* field : kUserMetadata) {
      if (in.contains(field)) {
        meta[field] = in[field];
      } else {
        meta.erase(field);
      }
    }
    Json spec = doc.contains("spec") ? doc["spec"] : Json::object();
    if (spec != current["spec"]) {
      meta["generation"] = meta["generation"].get<int64_t>() + 1;
      next["spec"] = std::move(spec);
    }
    if (next == current) {
      result = std::move(current);
      return Status::Ok();
    }
    if (meta.contains("deletionTimestamp") && !HasFinalizers(next)) {
      result = std::move(next);
      return Remove(key);
    }
    QUIVER_ASSIGN_OR_RETURN(int64_t rv, NextResourceVersion());
    meta["resourceVersion"] = std::to_string(rv);
    result = std::move(next);
    return Write(result, /*insert=*/false);
  }));
  return result;
}

StatusOr<Json> Store::UpdateStatus(const ResourceKey& key, const Json& status,
                                   std::string_view expected_version) {
  std::lock_guard lock(mu_);
  Json result;
  QUIVER_RETURN_IF_ERROR(InTransaction([&]() -> Status {
    QUIVER_ASSIGN_OR_RETURN(auto existing, Load(key));
    if (!existing) return NotFound(DisplayKey(key) + " not found");
    auto& meta = (*existing)["metadata"];
    if (!expected_version.empty() && meta["resourceVersion"] != expected_version) {
      return FailedPrecondition(
          "the object has been modified; please apply your changes to the latest version and "
          "try again (resourceVersion " +
          std::string(expected_version) + ", stored " + meta["resourceVersion"].get<std::string>() +
          ")");
    }
    QUIVER_ASSIGN_OR_RETURN(int64_t rv, NextResourceVersion());
    meta["resourceVersion"] = std::to_string(rv);
    (*existing)["status"] = status.is_null() ? Json::object() : status;
    result = std::move(*existing);
    return Write(result, /*insert=*/false);
  }));
  return result;
}

StatusOr<Json> Store::Get(const ResourceKey& key) {
  std::lock_guard lock(mu_);
  QUIVER_ASSIGN_OR_RETURN(auto existing, Load(key));
  if (!existing) return NotFound(DisplayKey(key) + " not found");
  return std::move(*existing);
}

StatusOr<ResourceList> Store::List(std::string_view kind, std::string_view ns) {
  std::lock_guard lock(mu_);
  ResourceList list;
  // One read transaction so that the items and the version agree.
  QUIVER_RETURN_IF_ERROR(Exec("BEGIN"));
  Status s = [&]() -> Status {
    QUIVER_ASSIGN_OR_RETURN(auto stmt,
                            Prepare("SELECT namespace, name FROM resources WHERE kind = ?1 "
                                    "AND (?2 = '' OR namespace = ?2) ORDER BY namespace, name"));
    stmt.Bind(1, kind).Bind(2, ns);
    std::vector<ResourceKey> keys;
    while (true) {
      QUIVER_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      keys.push_back({std::string(kind), stmt.Text(0), stmt.Text(1)});
    }
    for (const auto& key : keys) {
      QUIVER_ASSIGN_OR_RETURN(auto doc, Load(key));
      if (doc) list.items.push_back(std::move(*doc));
    }
    QUIVER_ASSIGN_OR_RETURN(auto version,
                            Prepare("SELECT value FROM counters WHERE name = 'resource_version'"));
    QUIVER_ASSIGN_OR_RETURN(bool row, version.Step());
    list.resource_version = row ? version.Int(0) : 0;
    return Status::Ok();
  }();
  (void)Exec("COMMIT");
  if (!s.ok()) return s;
  return list;
}

StatusOr<Json> Store::Delete(const ResourceKey& key) {
  std::lock_guard lock(mu_);
  Json result;
  QUIVER_RETURN_IF_ERROR(InTransaction([&]() -> Status {
    QUIVER_ASSIGN_OR_RETURN(auto existing, Load(key));
    if (!existing) return NotFound(DisplayKey(key) + " not found");
    result = std::move(*existing);
    if (!HasFinalizers(result)) return Remove(key);
    auto& meta = result["metadata"];
    if (meta.contains("deletionTimestamp")) return Status::Ok();  // already being deleted
    meta["deletionTimestamp"] = Now();
    QUIVER_ASSIGN_OR_RETURN(int64_t rv, NextResourceVersion());
    meta["resourceVersion"] = std::to_string(rv);
    return Write(result, /*insert=*/false);
  }));
  return result;
}

// --- Revisions -----------------------------------------------------------------------------

StatusOr<Revision> Store::CreateRevision(const ComponentKey& component,
                                         std::string_view fingerprint, const Json& spec,
                                         const Json& state) {
  std::lock_guard lock(mu_);
  Revision rev;
  QUIVER_RETURN_IF_ERROR(InTransaction([&]() -> Status {
    QUIVER_ASSIGN_OR_RETURN(auto stmt, Prepare("SELECT COALESCE(MAX(ordinal), 0) FROM revisions "
                                               "WHERE component_key = ?1"));
    stmt.Bind(1, component.ToString());
    QUIVER_ASSIGN_OR_RETURN(bool row, stmt.Step());
    rev.component = component;
    rev.ordinal = (row ? stmt.Int(0) : 0) + 1;
    char ordinal[24];
    std::snprintf(ordinal, sizeof ordinal, "%05lld", static_cast<long long>(rev.ordinal));
    rev.name = component.isvc + "-" + component.component + "-" + ordinal;
    rev.fingerprint = std::string(fingerprint);
    rev.spec = spec;
    rev.created = Now();
    rev.state = state;
    QUIVER_ASSIGN_OR_RETURN(
        auto insert, Prepare("INSERT INTO revisions (component_key, ordinal, name, fingerprint,"
                             " spec, created, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    insert.Bind(1, component.ToString()).Bind(2, rev.ordinal).Bind(3, rev.name);
    insert.Bind(4, rev.fingerprint).Bind(5, rev.spec.dump()).Bind(6, rev.created);
    insert.Bind(7, rev.state.dump());
    return insert.Run();
  }));
  return rev;
}

StatusOr<std::vector<Revision>> Store::ListRevisions(const ComponentKey& component) {
  std::lock_guard lock(mu_);
  QUIVER_ASSIGN_OR_RETURN(
      auto stmt, Prepare("SELECT ordinal, name, fingerprint, spec, created, state FROM revisions"
                         " WHERE component_key = ?1 ORDER BY ordinal"));
  stmt.Bind(1, component.ToString());
  std::vector<Revision> out;
  while (true) {
    QUIVER_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    Revision rev;
    rev.component = component;
    rev.ordinal = stmt.Int(0);
    rev.name = stmt.Text(1);
    rev.fingerprint = stmt.Text(2);
    QUIVER_ASSIGN_OR_RETURN(rev.spec, ParseColumn(stmt.Text(3), "revision spec"));
    rev.created = stmt.Text(4);
    QUIVER_ASSIGN_OR_RETURN(rev.state, ParseColumn(stmt.Text(5), "revision state"));
    out.push_back(std::move(rev));
  }
  return out;
}

Status Store::UpdateRevisionState(const ComponentKey& component, std::string_view revision,
                                  const Json& state) {
  std::lock_guard lock(mu_);
  QUIVER_ASSIGN_OR_RETURN(
      auto stmt, Prepare("UPDATE revisions SET state = ?3 WHERE component_key = ?1 AND name = ?2"));
  QUIVER_RETURN_IF_ERROR(
      stmt.Bind(1, component.ToString()).Bind(2, revision).Bind(3, state.dump()).Run());
  if (sqlite3_changes(db_) == 0) {
    return NotFound("revision " + std::string(revision) + " of " + component.ToString() +
                    " not found");
  }
  return Status::Ok();
}

Status Store::DeleteRevision(const ComponentKey& component, std::string_view revision) {
  std::lock_guard lock(mu_);
  return InTransaction([&]() -> Status {
    {
      QUIVER_ASSIGN_OR_RETURN(
          auto stmt, Prepare("DELETE FROM replicas WHERE component_key = ?1 AND revision = ?2"));
      QUIVER_RETURN_IF_ERROR(stmt.Bind(1, component.ToString()).Bind(2, revision).Run());
    }
    QUIVER_ASSIGN_OR_RETURN(
        auto stmt, Prepare("DELETE FROM revisions WHERE component_key = ?1 AND name = ?2"));
    return stmt.Bind(1, component.ToString()).Bind(2, revision).Run();
  });
}

// --- Replicas ------------------------------------------------------------------------------

Status Store::PutReplica(const Replica& replica) {
  std::lock_guard lock(mu_);
  QUIVER_ASSIGN_OR_RETURN(
      auto stmt,
      Prepare("INSERT OR REPLACE INTO replicas (component_key, revision, replica_index, pid, "
              "process_start_time, ports, log_path, state) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  stmt.Bind(1, replica.component.ToString()).Bind(2, replica.revision).Bind(3, replica.index);
  stmt.Bind(4, replica.pid).Bind(5, static_cast<int64_t>(replica.process_start_time));
  stmt.Bind(6, Json(replica.ports).dump()).Bind(7, replica.log_path).Bind(8, replica.state);
  return stmt.Run();
}

StatusOr<std::vector<Replica>> Store::ListReplicas(const ComponentKey& component) {
  std::lock_guard lock(mu_);
  QUIVER_ASSIGN_OR_RETURN(
      auto stmt,
      Prepare("SELECT r.revision, r.replica_index, r.pid, r.process_start_time, r.ports, "
              "r.log_path, r.state FROM replicas r LEFT JOIN revisions v "
              "ON v.component_key = r.component_key AND v.name = r.revision "
              "WHERE r.component_key = ?1 ORDER BY v.ordinal, r.revision, r.replica_index"));
  stmt.Bind(1, component.ToString());
  std::vector<Replica> out;
  while (true) {
    QUIVER_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    Replica r;
    r.component = component;
    r.revision = stmt.Text(0);
    r.index = stmt.Int(1);
    r.pid = stmt.Int(2);
    r.process_start_time = static_cast<uint64_t>(stmt.Int(3));
    QUIVER_ASSIGN_OR_RETURN(Json ports, ParseColumn(stmt.Text(4), "replica ports"));
    for (const auto& p : ports) r.ports.push_back(p.get<int>());
    r.log_path = stmt.Text(5);
    r.state = stmt.Text(6);
    out.push_back(std::move(r));
  }
  return out;
}

Status Store::DeleteReplica(const ComponentKey& component, std::string_view revision,
                            int64_t index) {
  std::lock_guard lock(mu_);
  QUIVER_ASSIGN_OR_RETURN(auto stmt,
                          Prepare("DELETE FROM replicas WHERE component_key = ?1 AND revision = ?2 "
                                  "AND replica_index = ?3"));
  return stmt.Bind(1, component.ToString()).Bind(2, revision).Bind(3, index).Run();
}

// --- Events --------------------------------------------------------------------------------

Status Store::RecordEvent(const ResourceKey& key, Event event) {
  if (event.type != "Normal" && event.type != "Warning") {
    return InvalidArgument("event type must be Normal or Warning, got \"" + event.type + "\"");
  }
  std::lock_guard lock(mu_);
  event.time = Now();
  return InTransaction([&]() -> Status {
    {
      QUIVER_ASSIGN_OR_RETURN(
          auto stmt, Prepare("INSERT INTO events (resource_key, time, type, reason, message) "
                             "VALUES (?1, ?2, ?3, ?4, ?5)"));
      stmt.Bind(1, key.ToString()).Bind(2, event.time).Bind(3, event.type);
      QUIVER_RETURN_IF_ERROR(stmt.Bind(4, event.reason).Bind(5, event.message).Run());
    }
    QUIVER_ASSIGN_OR_RETURN(
        auto prune,
        Prepare("DELETE FROM events WHERE resource_key = ?1 AND id <= (SELECT id FROM events "
                "WHERE resource_key = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)"));
    return prune.Bind(1, key.ToString())
        .Bind(2, static_cast<int64_t>(options_.max_events_per_resource))
        .Run();
  });
}

StatusOr<std::vector<Event>> Store::ListEvents(const ResourceKey& key) {
  std::lock_guard lock(mu_);
  QUIVER_ASSIGN_OR_RETURN(auto stmt, Prepare("SELECT time, type, reason, message FROM events "
                                             "WHERE resource_key = ?1 ORDER BY id"));
  stmt.Bind(1, key.ToString());
  std::vector<Event> out;
  while (true) {
    QUIVER_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back({stmt.Text(0), stmt.Text(1), stmt.Text(2), stmt.Text(3)});
  }
  return out;
}

}  // namespace quiver::store
