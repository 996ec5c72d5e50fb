// Checks of XGBoost model documents for what XGBoost 1.7 trusts without checking. Its UBJSON
// reader trusts every length, its tree loader trusts parent and category indices, and its
// predictor trusts child indices: a corrupt file (one flipped byte) can crash the loader, or make
// prediction loop forever or read and write out of bounds. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace quiver::xgboost_runtime {

struct ModelStructure {
  std::string booster;       // "gbtree", "dart" or "gblinear"
  int64_t num_features = 0;  // learner_model_param.num_feature
  int64_t num_trees = 0;     // 0 for gblinear
  int64_t num_groups = 1;    // outputs per row before the objective's transform
};

// Checks a model in XGBoost's JSON schema: the text of a .json model file, the output of
// UbjToJson, or what XGBoosterSaveModelToBuffer({"format":"json"}) writes. NaN and Infinity,
// which XGBoost writes for non-finite floats, are accepted. Checked:
// - each tree's node arrays have num_nodes entries; parents lie inside the tree; tree ids are
//   0..n-1 once each; categorical splits name category ranges that exist, of categories in
//   [0, 2^24);
// - every tree reached from its root is finite and acyclic, with children (and the left + 1 the
//   predictor takes for a numerical right child) inside the tree, and splits on features below
//   num_feature;
// - each tree's output group exists; num_parallel_tree >= 1; dart has one weight per tree;
//   gblinear has (num_feature + 1) x groups weights.
// kInvalidArgument says what is wrong and where ("tree 3, node 7: ...").
StatusOr<ModelStructure> CheckModelJson(std::string_view model_json);

// Converts UBJSON as XGBoost writes and reads it (big-endian int64 lengths after 'L', typed
// arrays of d/U/i/l/L) to JSON text for CheckModelJson, checking that every length lies inside
// `ubj` and that nesting stays under 128 levels. Non-finite floats become 0.
StatusOr<std::string> UbjToJson(std::string_view ubj);

}  // namespace quiver::xgboost_runtime
