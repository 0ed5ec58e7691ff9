#!/usr/bin/python3
# app.py as a CGI program (Python's standard library, one process per
# request): the recipe etc/recipes/wsgi-cgi.json. Python finds app.py next
# to this file (sys.path[0] is the script's directory).
from wsgiref.handlers import CGIHandler
from app import application
CGIHandler().run(application)
