"""The training image: fine-tune a preset model on a flower data set and convert it to TFLite."""
