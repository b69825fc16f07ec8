"""The reference for bench_sheets.py: what a hand-written script loading a CSV into a sheet does,
one ``values.append`` per 1,000 rows (the usual pattern of google-api-python-client examples).

    python benchmarks/sheets_handwritten.py CSV SPREADSHEET TAB ENDPOINT CREDENTIALS [ROWS_PER_REQUEST]
"""

from __future__ import annotations

import csv
import sys

import httplib2
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build


def main() -> None:
    path, spreadsheet, tab, endpoint, credentials_file = sys.argv[1:6]
    per_request = int(sys.argv[6]) if len(sys.argv) > 6 else 1000
    import json

    info = json.load(open(credentials_file))
    credentials = Credentials.from_authorized_user_info(info).with_token_uri(info["token_uri"])
    service = build("sheets", "v4", http=AuthorizedHttp(credentials, http=httplib2.Http()), static_discovery=True,
                    client_options={"api_endpoint": endpoint})
    values = service.spreadsheets().values()
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        rows = [next(reader)]  # the header goes with the first request
        for row in reader:
            rows.append(row)
            if len(rows) >= per_request:
                values.append(spreadsheetId=spreadsheet, range=f"'{tab}'!A1", valueInputOption="USER_ENTERED",
                              body={"values": rows}).execute()
                rows = []
        if rows:
            values.append(spreadsheetId=spreadsheet, range=f"'{tab}'!A1", valueInputOption="USER_ENTERED",
                          body={"values": rows}).execute()


if __name__ == "__main__":
    main()
