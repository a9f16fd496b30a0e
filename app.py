"""Chalice app: thin wiring only. The logic lives in chalicelib/."""
from chalice import Chalice

app = Chalice(app_name="flowers")
