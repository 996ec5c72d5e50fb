#include "runtimes/onnx/onnx_graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "onnx_graph.pb.h"

namespace quiver::onnx_runtime {
namespace {

namespace fs = std::filesystem;
namespace pb = ::quiver::onnx_graph;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const fs::path kTestdata = fs::path(QUIVER_SOURCE_DIR) / "src" / "runtimes" / "onnx" / "testdata";

std::string ReadBytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void AddValue(pb::ValueInfoProto* value, const std::string& name, int32_t elem_type,
              std::initializer_list<std::variant<int64_t, std::string>> dims) {
  value->set_name(name);
  auto* tensor = value->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elem_type);
  auto* shape = tensor->mutable_shape();
  for (const auto& d : dims) {
    auto* dim = shape->add_dim();
    if (std::holds_alternative<int64_t>(d)) {
      dim->set_dim_value(std::get<int64_t>(d));
    } else if (!std::get<std::string>(d).empty()) {
      dim->set_dim_param(std::get<std::string>(d));
    }  // else: neither, an unknown dimension
  }
}

pb::ModelProto SmallModel() {
  pb::ModelProto model;
  model.set_ir_version(3);
  model.set_producer_name("handmade");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(9);
  auto* graph = model.mutable_graph();
  AddValue(graph->add_input(), "x", 1, {std::string("batch"), int64_t{3}, std::string()});
  // IR version 3: the weight is listed among the inputs too.
  AddValue(graph->add_input(), "weight", 1, {int64_t{3}, int64_t{3}});
  graph->add_initializer()->set_name("weight");
  AddValue(graph->add_output(), "y", 7, {std::string("batch")});
  return model;
}

TEST(OnnxGraphTest, ReadsInputsOutputsAndSymbolicDimensions) {
  StatusOr<OnnxGraph> graph = ParseOnnxGraph(SmallModel().SerializeAsString());
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->ir_version, 3);
  EXPECT_EQ(graph->opset, 9);
  EXPECT_EQ(graph->producer, "handmade");
  ASSERT_EQ(graph->inputs.size(), 1u) << "the initializer is not an input";
  EXPECT_EQ(graph->inputs[0].name, "x");
  EXPECT_EQ(graph->inputs[0].elem_type, 1);
  EXPECT_TRUE(graph->inputs[0].has_shape);
  EXPECT_THAT(graph->inputs[0].shape, ElementsAre(-1, 3, -1));
  EXPECT_THAT(graph->inputs[0].dim_params, ElementsAre("batch", "", ""));
  ASSERT_EQ(graph->outputs.size(), 1u);
  EXPECT_EQ(graph->outputs[0].name, "y");
  EXPECT_EQ(graph->outputs[0].elem_type, 7);
  EXPECT_THAT(graph->outputs[0].shape, ElementsAre(-1));
}

TEST(OnnxGraphTest, AbsentShapeIsUnknownRank) {
  pb::ModelProto model = SmallModel();
  model.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type()->clear_shape();
  // A scalar has a shape with no dimensions: known rank 0.
  AddValue(model.mutable_graph()->add_output(), "scalar", 1, {});
  StatusOr<OnnxGraph> graph = ParseOnnxGraph(model.SerializeAsString());
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_FALSE(graph->outputs[0].has_shape);
  EXPECT_THAT(graph->outputs[0].shape, IsEmpty());
  EXPECT_TRUE(graph->outputs[1].has_shape);
  EXPECT_THAT(graph->outputs[1].shape, IsEmpty());
}

TEST(OnnxGraphTest, ReadsAnExportedModel) {
  StatusOr<OnnxGraph> graph = ParseOnnxGraph(ReadBytes(kTestdata / "cnn.onnx"));
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->opset, 11);
  EXPECT_THAT(graph->producer, HasSubstr("pytorch"));
  ASSERT_EQ(graph->inputs.size(), 1u);
  EXPECT_EQ(graph->inputs[0].name, "image");
  EXPECT_THAT(graph->inputs[0].shape, ElementsAre(-1, 1, 16, 16));
  ASSERT_EQ(graph->outputs.size(), 1u);
  EXPECT_EQ(graph->outputs[0].name, "logits");
  EXPECT_THAT(graph->outputs[0].shape, ElementsAre(-1, 10));
}

TEST(OnnxGraphTest, RejectsWhatIsNotAModel) {
  EXPECT_THAT(ParseOnnxGraph("").status().message(), HasSubstr("empty"));
  EXPECT_THAT(ParseOnnxGraph("not a model\n").status().message(),
              HasSubstr("not a valid protobuf ModelProto"));
  const std::string bytes = ReadBytes(kTestdata / "cnn.onnx");
  ASSERT_GT(bytes.size(), 1000u);
  StatusOr<OnnxGraph> truncated = ParseOnnxGraph(bytes.substr(0, bytes.size() / 2));
  EXPECT_EQ(truncated.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(truncated.status().message(), HasSubstr("truncated or corrupt"));
  pb::ModelProto no_graph;
  no_graph.set_ir_version(8);
  EXPECT_THAT(ParseOnnxGraph(no_graph.SerializeAsString()).status().message(),
              HasSubstr("no graph"));
}

TEST(OnnxGraphTest, RejectsGraphsWithoutInputsOrOutputsOrWithNonTensors) {
  pb::ModelProto model = SmallModel();
  model.mutable_graph()->clear_output();
  EXPECT_THAT(ParseOnnxGraph(model.SerializeAsString()).status().message(),
              HasSubstr("no outputs"));

  model = SmallModel();
  model.mutable_graph()->mutable_input()->DeleteSubrange(0, 1);  // only the initializer is left
  EXPECT_THAT(ParseOnnxGraph(model.SerializeAsString()).status().message(), HasSubstr("no inputs"));

  model = SmallModel();
  model.mutable_graph()->mutable_input(0)->mutable_type()->clear_tensor_type();
  EXPECT_THAT(ParseOnnxGraph(model.SerializeAsString()).status().message(),
              HasSubstr("input 0 'x' is not a tensor"));

  model = SmallModel();
  model.mutable_graph()->mutable_output(0)->clear_name();
  EXPECT_THAT(ParseOnnxGraph(model.SerializeAsString()).status().message(),
              HasSubstr("output 0 has no name"));
}

TEST(OnnxGraphTest, ElementTypes) {
  EXPECT_EQ(DataTypeOfOnnxType(1), DataType::kFp32);
  EXPECT_EQ(DataTypeOfOnnxType(7), DataType::kInt64);
  EXPECT_EQ(DataTypeOfOnnxType(9), DataType::kBool);
  EXPECT_EQ(DataTypeOfOnnxType(11), DataType::kFp64);
  EXPECT_EQ(DataTypeOfOnnxType(13), DataType::kUint64);
  EXPECT_EQ(DataTypeOfOnnxType(8), std::nullopt);  // STRING
  EXPECT_EQ(DataTypeOfOnnxType(0), std::nullopt);
  EXPECT_EQ(OnnxTypeName(1), "FLOAT");
  EXPECT_EQ(OnnxTypeName(8), "STRING");
  EXPECT_EQ(OnnxTypeName(16), "BFLOAT16");
  EXPECT_EQ(OnnxTypeName(99), "type 99");
}

}  // namespace
}  // namespace quiver::onnx_runtime
