"""Local config API and web page: create_app() (app.py), start_api_server() (server.py)."""
