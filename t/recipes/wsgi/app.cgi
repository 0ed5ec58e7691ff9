#!/usr/bin/python3
# app.py as a CGI program (Python's standard library, one process per
# request): the recipe etc/recipes/wsgi-cgi.json.
import os
import sys
from wsgiref.handlers import CGIHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from app import application  # noqa: E402

CGIHandler().run(application)
