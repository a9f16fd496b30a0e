"""The flowers AWS stack (CDK v2). `infra/app.py` is the CDK app; `FlowersStack` is everything it deploys."""
import os

# jsii (CDK's Node.js bridge) prints a banner about Node 20's end of life on every start.
# The value names the Node.js major versions to keep quiet about.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "20")
