#include "runtimes/xgboost/model_check.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

namespace quiver::xgboost_runtime {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;

// XGBoost stores categories as floats, exact only below 2^24; a larger one is corruption, and
// would make the loader allocate a bitset of that many bits.
constexpr int64_t kMaxCategory = int64_t{1} << 24;

// XGBoost writes non-finite floats as NaN, Infinity and -Infinity (a categorical split keeps NaN
// as its threshold), which JSON does not allow. No field checked here holds one; each becomes 0.
std::string ReplaceNonFinite(std::string_view json) {
  if (json.find("NaN") == std::string_view::npos &&
      json.find("Infinity") == std::string_view::npos) {
    return std::string(json);
  }
  std::string out;
  out.reserve(json.size());
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < json.size()) {
        out += json[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (json.compare(i, 3, "NaN") == 0) {
      out += '0';
      i += 2;
      continue;
    } else if (json.compare(i, 8, "Infinity") == 0) {
      out += '0';  // "-Infinity" becomes "-0"
      i += 7;
      continue;
    }
    out += c;
  }
  return out;
}

Status Invalid(std::string_view where, std::string_view what) {
  return InvalidArgument(std::string(where) + ": " + std::string(what));
}

bool Has(element object, std::string_view key) {
  element unused;
  return object[key].get(unused) == simdjson::SUCCESS;
}

// XGBoost keeps parameters as strings ("num_class": "3"). Absent: `fallback`.
StatusOr<int64_t> StringInt(element object, std::string_view key, std::string_view where,
                            int64_t fallback) {
  element value;
  if (object[key].get(value) != simdjson::SUCCESS) return fallback;
  std::string_view s;
  int64_t v = 0;
  if (value.get_string().get(s) != simdjson::SUCCESS || s.empty() ||
      std::from_chars(s.data(), s.data() + s.size(), v).ptr != s.data() + s.size()) {
    return Invalid(where, std::string(key) + " is not an integer");
  }
  return v;
}

StatusOr<std::vector<int64_t>> IntArray(element object, std::string_view key,
                                        std::string_view where) {
  array values;
  if (object[key].get_array().get(values) != simdjson::SUCCESS) {
    return Invalid(where, "no array " + std::string(key));
  }
  std::vector<int64_t> out;
  out.reserve(values.size());
  for (element e : values) {
    int64_t v = 0;
    if (e.get_int64().get(v) != simdjson::SUCCESS) {
      return Invalid(where, std::string(key) + " holds a value that is not an integer");
    }
    out.push_back(v);
  }
  return out;
}

StatusOr<size_t> ArraySize(element object, std::string_view key, std::string_view where) {
  array values;
  if (object[key].get_array().get(values) != simdjson::SUCCESS) {
    return Invalid(where, "no array " + std::string(key));
  }
  return values.size();
}

// As XGBoost's RegTree::LoadCategoricalSplit reads them: the k-th categorical node's categories
// are categories[segments[k], segments[k] + sizes[k]).
Status CheckCategories(element tree, const std::string& where) {
  QUIVER_ASSIGN_OR_RETURN(std::vector<int64_t> nodes, IntArray(tree, "categories_nodes", where));
  QUIVER_ASSIGN_OR_RETURN(std::vector<int64_t> segments,
                          IntArray(tree, "categories_segments", where));
  QUIVER_ASSIGN_OR_RETURN(std::vector<int64_t> sizes, IntArray(tree, "categories_sizes", where));
  QUIVER_ASSIGN_OR_RETURN(std::vector<int64_t> categories, IntArray(tree, "categories", where));
  if (segments.size() != nodes.size() || sizes.size() != nodes.size()) {
    return Invalid(where, "categories_nodes, _segments and _sizes differ in length");
  }
  const int64_t total = static_cast<int64_t>(categories.size());
  for (size_t k = 0; k < nodes.size(); ++k) {
    if (segments[k] < 0 || sizes[k] < 0 || segments[k] > total || sizes[k] > total - segments[k]) {
      return Invalid(where, "categorical split " + std::to_string(k) + " is out of range");
    }
  }
  for (int64_t c : categories) {
    if (c < 0 || c >= kMaxCategory) return Invalid(where, "category " + std::to_string(c));
  }
  return Status::Ok();
}

Status CheckTree(element tree, int64_t index, int64_t num_features) {
  const std::string where = "tree " + std::to_string(index);
  element param;
  if (tree["tree_param"].get(param) != simdjson::SUCCESS) return Invalid(where, "no tree_param");
  QUIVER_ASSIGN_OR_RETURN(int64_t n, StringInt(param, "num_nodes", where, 0));
  if (n < 1 || n > std::numeric_limits<int32_t>::max()) {
    return Invalid(where, "num_nodes " + std::to_string(n));
  }
  QUIVER_ASSIGN_OR_RETURN(std::vector<int64_t> left, IntArray(tree, "left_children", where));
  QUIVER_ASSIGN_OR_RETURN(std::vector<int64_t> right, IntArray(tree, "right_children", where));
  QUIVER_ASSIGN_OR_RETURN(std::vector<int64_t> parents, IntArray(tree, "parents", where));
  QUIVER_ASSIGN_OR_RETURN(std::vector<int64_t> split, IntArray(tree, "split_indices", where));
  const bool categorical = Has(tree, "split_type");  // as XGBoost decides it
  std::vector<int64_t> split_type;
  if (categorical) {
    QUIVER_ASSIGN_OR_RETURN(split_type, IntArray(tree, "split_type", where));
    QUIVER_RETURN_IF_ERROR(CheckCategories(tree, where));
  }
  const size_t size = static_cast<size_t>(n);
  if (left.size() != size || right.size() != size || parents.size() != size ||
      split.size() != size || (categorical && split_type.size() != size)) {
    return Invalid(where,
                   "node arrays do not all have num_nodes " + std::to_string(n) + " entries");
  }
  for (const char* key :
       {"loss_changes", "sum_hessian", "base_weights", "split_conditions", "default_left"}) {
    QUIVER_ASSIGN_OR_RETURN(size_t entries, ArraySize(tree, key, where));
    if (entries != size) {
      return Invalid(where, std::string(key) + " has " + std::to_string(entries) + " entries for " +
                                std::to_string(n) + " nodes");
    }
  }
  // The loader looks every node's parent up; the top bit marks "is a left child".
  for (size_t i = 1; i < size; ++i) {
    const int64_t parent = static_cast<int64_t>(static_cast<uint32_t>(parents[i]) & 0x7fffffffu);
    if (parents[i] < std::numeric_limits<int32_t>::min() ||
        parents[i] > std::numeric_limits<uint32_t>::max() || parent >= n) {
      return Invalid(where,
                     "node " + std::to_string(i) + " has parent " + std::to_string(parents[i]));
    }
  }

  // A node is a leaf when its left child is -1. The predictor goes from a split to its left
  // child, its right child, or left + 1 (which it takes for the right child of a numerical split).
  auto check_node = [&](int64_t i) -> Status {
    if (left[i] == -1) return Status::Ok();
    const std::string node = where + ", node " + std::to_string(i);
    if (left[i] < 0 || left[i] + 1 >= n || right[i] < 0 || right[i] >= n) {
      return Invalid(node, "children " + std::to_string(left[i]) + ", " + std::to_string(right[i]) +
                               " are outside the tree's " + std::to_string(n) + " nodes");
    }
    if (split[i] < 0 || split[i] >= num_features) {
      return Invalid(node, "splits on feature " + std::to_string(split[i]) + " of " +
                               std::to_string(num_features));
    }
    if (categorical && split_type[i] != 0 && split_type[i] != 1) {
      return Invalid(node, "unknown split type " + std::to_string(split_type[i]));
    }
    return Status::Ok();
  };

  // Depth-first from the root with an explicit stack (lossguide trees can be thousands deep);
  // meeting a node that is still on the path means a cycle, on which prediction never ends.
  enum : uint8_t { kUnseen, kOnPath, kDone };
  std::vector<uint8_t> state(size, kUnseen);
  struct Frame {
    int64_t node;
    int next_child;
  };
  std::vector<Frame> stack;
  QUIVER_RETURN_IF_ERROR(check_node(0));
  state[0] = kOnPath;
  stack.push_back({0, 0});
  while (!stack.empty()) {
    const int64_t node = stack.back().node;
    const int slot = stack.back().next_child++;
    if (left[node] == -1 || slot == 3) {
      state[node] = kDone;
      stack.pop_back();
      continue;
    }
    const int64_t child = slot == 0 ? left[node] : slot == 1 ? left[node] + 1 : right[node];
    if (state[child] == kOnPath) {
      return Invalid(where, "node " + std::to_string(child) + " is its own ancestor");
    }
    if (state[child] == kDone) continue;
    QUIVER_RETURN_IF_ERROR(check_node(child));
    state[child] = kOnPath;
    stack.push_back({child, 0});
  }
  return Status::Ok();
}

Status CheckTrees(element model, ModelStructure* structure) {
  constexpr std::string_view kWhere = "gradient_booster.model";
  element param;
  if (model["gbtree_model_param"].get(param) != simdjson::SUCCESS) {
    return Invalid(kWhere, "no gbtree_model_param");
  }
  QUIVER_ASSIGN_OR_RETURN(int64_t num_trees, StringInt(param, "num_trees", kWhere, -1));
  // XGBoost divides by it to count boosting rounds.
  QUIVER_ASSIGN_OR_RETURN(int64_t parallel, StringInt(param, "num_parallel_tree", kWhere, 1));
  if (parallel < 1) return Invalid(kWhere, "num_parallel_tree " + std::to_string(parallel));

  array trees;
  if (model["trees"].get_array().get(trees) != simdjson::SUCCESS) {
    return Invalid(kWhere, "no trees");
  }
  const int64_t count = static_cast<int64_t>(trees.size());
  QUIVER_ASSIGN_OR_RETURN(std::vector<int64_t> tree_info, IntArray(model, "tree_info", kWhere));
  if (num_trees != count || static_cast<int64_t>(tree_info.size()) != count) {
    return Invalid(kWhere, std::to_string(count) + " trees, num_trees " +
                               std::to_string(num_trees) + ", " + std::to_string(tree_info.size()) +
                               " tree_info");
  }
  // XGBoost places each tree by its id; a missing one would stay null.
  std::vector<bool> seen(static_cast<size_t>(count), false);
  int64_t index = 0;
  for (element tree : trees) {
    const std::string where = "tree " + std::to_string(index);
    int64_t id = -1;
    if (tree["id"].get_int64().get(id) != simdjson::SUCCESS || id < 0 || id >= count ||
        seen[static_cast<size_t>(id)]) {
      return Invalid(where, "missing, duplicate or out-of-range id");
    }
    seen[static_cast<size_t>(id)] = true;
    const int64_t group = tree_info[static_cast<size_t>(index)];
    if (group < 0 || group >= structure->num_groups) {
      return Invalid(where, "output group " + std::to_string(group) + " of " +
                                std::to_string(structure->num_groups));
    }
    QUIVER_RETURN_IF_ERROR(CheckTree(tree, index, structure->num_features));
    ++index;
  }
  structure->num_trees = count;
  return Status::Ok();
}

// Appends a JSON string literal.
void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned>(c));
      out->append(escaped);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

// Walks UBJSON the way XGBoost's UBJReader does, without trusting a length, writing JSON.
class UbjTranscoder {
 public:
  explicit UbjTranscoder(std::string_view bytes) : bytes_(bytes) {}

  StatusOr<std::string> Run() {
    out_.reserve(bytes_.size() * 2);
    QUIVER_RETURN_IF_ERROR(Value(0));
    return std::move(out_);
  }

 private:
  static constexpr int kMaxDepth = 128;

  Status Error(std::string_view what) const {
    return InvalidArgument("UBJSON at byte " + std::to_string(pos_) + ": " + std::string(what));
  }
  size_t remaining() const { return bytes_.size() - pos_; }

  Status Next(char* c) {
    if (remaining() < 1) return Error("unexpected end");
    *c = bytes_[pos_++];
    return Status::Ok();
  }
  Status Expect(char want) {
    char c = 0;
    QUIVER_RETURN_IF_ERROR(Next(&c));
    if (c != want) return Error(std::string("expected '") + want + "'");
    return Status::Ok();
  }
  // A big-endian value of `size` bytes.
  Status Read(size_t size, uint64_t* bits) {
    if (remaining() < size) return Error("a value runs past the end");
    uint64_t v = 0;
    for (size_t i = 0; i < size; ++i) v = (v << 8) | static_cast<uint8_t>(bytes_[pos_++]);
    *bits = v;
    return Status::Ok();
  }
  // 'L' and an int64 count of items of at least `item_size` bytes that must fit in what is left.
  Status Count(size_t item_size, int64_t* n) {
    QUIVER_RETURN_IF_ERROR(Expect('L'));
    uint64_t v = 0;
    QUIVER_RETURN_IF_ERROR(Read(8, &v));
    if (v > remaining() / item_size) return Error("a length runs past the end");
    *n = static_cast<int64_t>(v);
    return Status::Ok();
  }
  Status String() {
    int64_t n = 0;
    QUIVER_RETURN_IF_ERROR(Count(1, &n));
    AppendJsonString(bytes_.substr(pos_, static_cast<size_t>(n)), &out_);
    pos_ += static_cast<size_t>(n);
    return Status::Ok();
  }
  void Float(double v) {
    if (!std::isfinite(v)) v = 0;
    char text[32];
    out_.append(text, static_cast<size_t>(std::snprintf(text, sizeof(text), "%.9g", v)));
  }
  void Int(int64_t v) { out_.append(std::to_string(v)); }

  // One scalar of UBJSON type `type`, its marker already read.
  Status Scalar(char type) {
    uint64_t bits = 0;
    switch (type) {
      case 'Z':
        out_.append("null");
        return Status::Ok();
      case 'T':
        out_.append("true");
        return Status::Ok();
      case 'F':
        out_.append("false");
        return Status::Ok();
      case 'i':
      case 'C':
        QUIVER_RETURN_IF_ERROR(Read(1, &bits));
        Int(static_cast<int8_t>(bits));
        return Status::Ok();
      case 'U':
        QUIVER_RETURN_IF_ERROR(Read(1, &bits));
        Int(static_cast<uint8_t>(bits));
        return Status::Ok();
      case 'I':
        QUIVER_RETURN_IF_ERROR(Read(2, &bits));
        Int(static_cast<int16_t>(bits));
        return Status::Ok();
      case 'l':
        QUIVER_RETURN_IF_ERROR(Read(4, &bits));
        Int(static_cast<int32_t>(bits));
        return Status::Ok();
      case 'L':
        QUIVER_RETURN_IF_ERROR(Read(8, &bits));
        Int(static_cast<int64_t>(bits));
        return Status::Ok();
      case 'd': {
        QUIVER_RETURN_IF_ERROR(Read(4, &bits));
        const uint32_t b32 = static_cast<uint32_t>(bits);
        float f;
        std::memcpy(&f, &b32, sizeof(f));
        Float(f);
        return Status::Ok();
      }
      case 'D': {
        QUIVER_RETURN_IF_ERROR(Read(8, &bits));
        double d;
        std::memcpy(&d, &bits, sizeof(d));
        Float(d);
        return Status::Ok();
      }
      case 'S':
        return String();
      default:
        return Error("unknown marker");
    }
  }

  Status Value(int depth) {
    if (depth > kMaxDepth) return Error("nested too deep");
    char c = 0;
    QUIVER_RETURN_IF_ERROR(Next(&c));
    if (c == '{') return Object(depth);
    if (c == '[') return Array(depth);
    return Scalar(c);
  }

  Status Object(int depth) {
    out_.push_back('{');
    for (bool first = true;; first = false) {
      if (remaining() < 1) return Error("unterminated object");
      if (bytes_[pos_] == '}') {
        ++pos_;
        out_.push_back('}');
        return Status::Ok();
      }
      if (!first) out_.push_back(',');
      QUIVER_RETURN_IF_ERROR(String());  // a key: 'L' length bytes, no 'S'
      out_.push_back(':');
      QUIVER_RETURN_IF_ERROR(Value(depth + 1));
    }
  }

  Status Array(int depth) {
    if (remaining() < 1) return Error("unterminated array");
    out_.push_back('[');
    if (bytes_[pos_] == '$') {  // typed: '$' type '#' 'L' count, then count fixed-size values
      ++pos_;
      char type = 0;
      QUIVER_RETURN_IF_ERROR(Next(&type));
      size_t size = 0;
      switch (type) {
        case 'i':
        case 'U':
          size = 1;
          break;
        case 'l':
        case 'd':
          size = 4;
          break;
        case 'L':
          size = 8;
          break;
        default:
          return Error("unsupported typed array");
      }
      QUIVER_RETURN_IF_ERROR(Expect('#'));
      int64_t n = 0;
      QUIVER_RETURN_IF_ERROR(Count(size, &n));
      for (int64_t i = 0; i < n; ++i) {
        if (i > 0) out_.push_back(',');
        QUIVER_RETURN_IF_ERROR(Scalar(type));
      }
    } else if (bytes_[pos_] == '#') {  // counted: '#' 'L' count, then count values
      ++pos_;
      int64_t n = 0;
      QUIVER_RETURN_IF_ERROR(Count(1, &n));
      for (int64_t i = 0; i < n; ++i) {
        if (i > 0) out_.push_back(',');
        QUIVER_RETURN_IF_ERROR(Value(depth + 1));
      }
    } else {
      for (bool first = true;; first = false) {
        if (remaining() < 1) return Error("unterminated array");
        if (bytes_[pos_] == ']') {
          ++pos_;
          break;
        }
        if (!first) out_.push_back(',');
        QUIVER_RETURN_IF_ERROR(Value(depth + 1));
      }
    }
    out_.push_back(']');
    return Status::Ok();
  }

  std::string_view bytes_;
  size_t pos_ = 0;
  std::string out_;
};

}  // namespace

StatusOr<std::string> UbjToJson(std::string_view ubj) { return UbjTranscoder(ubj).Run(); }

StatusOr<ModelStructure> CheckModelJson(std::string_view model_json) {
  const simdjson::padded_string text(ReplaceNonFinite(model_json));
  simdjson::dom::parser parser;
  element root;
  if (auto error = parser.parse(text).get(root); error != simdjson::SUCCESS) {
    return InvalidArgument(std::string("not valid JSON: ") + simdjson::error_message(error));
  }
  element learner;
  element params;
  element booster;
  if (root["learner"].get(learner) != simdjson::SUCCESS ||
      learner["learner_model_param"].get(params) != simdjson::SUCCESS ||
      learner["gradient_booster"].get(booster) != simdjson::SUCCESS) {
    return InvalidArgument("no learner.learner_model_param or learner.gradient_booster");
  }
  constexpr std::string_view kParams = "learner_model_param";
  ModelStructure structure;
  QUIVER_ASSIGN_OR_RETURN(structure.num_features, StringInt(params, "num_feature", kParams, 0));
  QUIVER_ASSIGN_OR_RETURN(int64_t num_class, StringInt(params, "num_class", kParams, 0));
  QUIVER_ASSIGN_OR_RETURN(int64_t num_target, StringInt(params, "num_target", kParams, 1));
  if (structure.num_features < 0 || num_class < 0 || num_target < 1) {
    return Invalid(kParams, "num_feature, num_class or num_target out of range");
  }
  structure.num_groups = std::max<int64_t>({1, num_class, num_target});  // XGBoost's rule

  std::string_view name;
  if (booster["name"].get_string().get(name) != simdjson::SUCCESS) {
    return InvalidArgument("gradient_booster: no name");
  }
  structure.booster = std::string(name);
  if (name == "gblinear") {
    element model;
    if (booster["model"].get(model) != simdjson::SUCCESS) {
      return InvalidArgument("gradient_booster: no model");
    }
    QUIVER_ASSIGN_OR_RETURN(size_t weights, ArraySize(model, "weights", "gradient_booster.model"));
    if (static_cast<int64_t>(weights) != (structure.num_features + 1) * structure.num_groups) {
      return InvalidArgument("gradient_booster.model: " + std::to_string(weights) +
                             " weights for " + std::to_string(structure.num_features) +
                             " features and " + std::to_string(structure.num_groups) + " outputs");
    }
    return structure;
  }
  if (name != "gbtree" && name != "dart") {
    return InvalidArgument("gradient_booster: unknown booster '" + std::string(name) + "'");
  }
  const bool dart = name == "dart";
  element model;
  if ((dart ? booster["gbtree"]["model"].get(model) : booster["model"].get(model)) !=
      simdjson::SUCCESS) {
    return InvalidArgument("gradient_booster: no model");
  }
  QUIVER_RETURN_IF_ERROR(CheckTrees(model, &structure));
  if (dart) {
    QUIVER_ASSIGN_OR_RETURN(size_t weights, ArraySize(booster, "weight_drop", "gradient_booster"));
    if (static_cast<int64_t>(weights) != structure.num_trees) {
      return InvalidArgument("gradient_booster: " + std::to_string(weights) + " weight_drop for " +
                             std::to_string(structure.num_trees) + " trees");
    }
  }
  return structure;
}

}  // namespace quiver::xgboost_runtime
