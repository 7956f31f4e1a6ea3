"""The bookings stream loaded by dlt (https://dlthub.com), as its docs suggest: the declarative
REST API source with a cursor paginator and OAuth2 client credentials, into SQLite through
dlt's sqlalchemy destination. Written for the side-by-side benchmark (`run.sh`), not shipped.

Usage: python dlt_loader.py BASE_URL DATABASE
"""

import sys

import dlt
from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
from dlt.sources.rest_api import rest_api_source

base, database = sys.argv[1].rstrip("/"), sys.argv[2]

auth = OAuth2ClientCredentials(
    access_token_url=f"{base}/oauth2/token",
    client_id="sandbox-client",
    client_secret="sandbox-secret",
    access_token_request_data={
        "audience": "https://api.understory.io",
        "scope": "booking.read",
    },
)

source = rest_api_source(
    {
        "client": {"base_url": f"{base}/v1/", "auth": auth},
        "resources": [
            {
                "name": "bookings",
                "primary_key": "id",
                "write_disposition": "merge",
                "endpoint": {
                    "path": "bookings",
                    "params": {"limit": 100},
                    "data_selector": "items",
                    "paginator": JSONResponseCursorPaginator(
                        cursor_path="next", cursor_param="cursor"
                    ),
                },
            }
        ],
    }
)

pipeline = dlt.pipeline(
    pipeline_name="understory_bench",
    destination=dlt.destinations.sqlalchemy(f"sqlite:///{database}"),
    dataset_name="main",
    pipelines_dir=f"{database}.dlt",
)
info = pipeline.run(source)
rows = pipeline.last_trace.last_normalize_info.row_counts.get("bookings", 0)
print(f"rows {rows}")
