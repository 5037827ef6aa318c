from paystream.cli import app

app()
