"""The routes: server-rendered pages and the JSON API."""
