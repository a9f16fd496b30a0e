"""The logic the Lambda functions run: nothing here may import TensorFlow."""
