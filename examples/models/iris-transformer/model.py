"""Iris transformer, written as for KServe: preprocess -> (predictor) -> postprocess.

Request:  {"instances": [{"sepal_length": 6.8, "sepal_width": 2.8,
                          "petal_length": 4.8, "petal_width": 1.4}]}
Predictor (V1): {"instances": [[6.8, 2.8, 4.8, 1.4]]} -> {"predictions": [1]}
Response: {"predictions": [1], "species": ["versicolor"]}
"""
from kserve import Model
from kserve.errors import InvalidInput

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
SPECIES = ("setosa", "versicolor", "virginica")


class IrisTransformer(Model):
    def __init__(self, name: str):
        super().__init__(name)
        self.ready = True

    def preprocess(self, payload, headers=None):
        instances = payload.get("instances") if isinstance(payload, dict) else None
        if not isinstance(instances, list):
            raise InvalidInput('expected {"instances": [{...}, ...]}')
        rows = []
        for i, item in enumerate(instances):
            if not isinstance(item, dict):
                raise InvalidInput(f"instances[{i}]: expected an object with {', '.join(FEATURES)}")
            missing = [f for f in FEATURES if f not in item]
            if missing:
                raise InvalidInput(f"instances[{i}]: missing {', '.join(missing)}")
            rows.append([float(item[f]) for f in FEATURES])
        return {"instances": rows}

    def postprocess(self, result, headers=None, response_headers=None):
        predictions = result.get("predictions", [])
        result["species"] = [SPECIES[int(p)] if 0 <= int(p) < len(SPECIES) else None
                             for p in predictions]
        return result
