"""What training and the Lambdas share, and all of chalicelib/ the training image copies: words, rules, file
names and the buckets' layout. Imports nothing else of the project and no TensorFlow (tests/unit/test_import_rules.py)."""
