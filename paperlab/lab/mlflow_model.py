"""A paperlab net as an MLflow pyfunc model, logged with MLflow's models-from-code: this file travels with
the model and nothing is pickled. Input: a batch of images in [0, 1], (N, C, H, W) float32; output: logits.

    model = mlflow.pyfunc.load_model("models:/kd-hinton.teacher.cnn.digits/1"); model.predict(images)
"""

import mlflow
from mlflow.pyfunc import PythonModel


class PaperlabNet(PythonModel):
    def load_context(self, context):
        import json

        import torch
        from pydantic import TypeAdapter

        from paperlab.lab import nets
        from paperlab.lab.spec import NetSpec

        about = json.loads(open(context.artifacts["about"], encoding="utf-8").read())
        net = TypeAdapter(NetSpec).validate_python(about["net"])
        self.model = nets.build(net, tuple(about["shape"]), about["classes"])
        saved = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        self.model.load_state_dict(saved["state_dict"])
        self.model.eval()
        self.mean = torch.tensor(about["mean"]).view(1, -1, 1, 1) if about.get("mean") else None
        self.std = torch.tensor(about["std"]).view(1, -1, 1, 1) if about.get("std") else None

    def predict(self, context, model_input, params=None):
        import numpy as np
        import torch

        x = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        if self.mean is not None:
            x = (x - self.mean) / self.std
        with torch.no_grad():
            return self.model(x).numpy()


mlflow.models.set_model(PaperlabNet())
