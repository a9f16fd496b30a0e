"""The training image: fine-tune a preset model on a flower data set and convert it to TFLite."""
import os

# TensorFlow's C++ info lines drown the job's own log; warnings and errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
