"""AWS adapters of the ports in chalicelib/ports.py (boto3 clients are passed in)."""
