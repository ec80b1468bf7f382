"""``allotrack.web.server:app`` for multi-worker servers: the app over ``ALLOTRACK_DATABASE_URL``. Give every
worker the same ``ALLOTRACK_SECRET_KEY`` so sessions survive across workers."""

from allotrack.web.app import create_app

app = create_app()
