"""Run by .venv-mediapipe's python (tests/e2e/test_mobile_contract.py): what an app does with a model.tflite.

stdin: {"models": {"name": "path/model.tflite", ...}, "photos": ["path.jpg", ...]}
stdout: {"name": [[{"name", "index", "score"} for each category MediaPipe returns] for each photo], ...}

MediaPipe Tasks' ImageClassifier with default options: it reads the labels, the normalisation
and any score threshold from the model's TFLite Metadata, and decodes and resizes the photo itself.
"""
import json
import sys

import mediapipe as mp
from mediapipe.tasks.python import BaseOptions, vision


def main() -> None:
    request = json.load(sys.stdin)
    answers = {}
    for name, path in request["models"].items():
        options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=path))
        with vision.ImageClassifier.create_from_options(options) as classifier:  # closed before exit
            answers[name] = [
                [{"name": c.category_name, "index": c.index, "score": c.score}
                 for c in classifier.classify(mp.Image.create_from_file(photo)).classifications[0].categories]
                for photo in request["photos"]]
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
