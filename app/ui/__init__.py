"""The Dash UI, served by the FastAPI app itself."""

from __future__ import annotations

import dash
from dash import html
from fastapi import FastAPI

from app.state import AppState


def mount_ui(server: FastAPI, state: AppState) -> dash.Dash:
    ui = dash.Dash(__name__, server=server, title="Eddyscope")
    ui.layout = html.Div("Eddyscope")
    return ui
