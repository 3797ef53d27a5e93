"""The fault-test gateway itself: each mode does to a real emulator what the fault tests rely on."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.e2e.gateway import REDACTED, Gateway, RecordingStub, Rule
from tests.e2e.harness import KEY, THREAD_A, THREAD_B, Api, BackgroundServer

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}
CREATE = {"assistant_id": "asst_demo", "metadata": {"suite": "gateway"}}
INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
GATEWAY_504 = {"error": {"message": "Gateway Timeout", "type": "server_error", "param": None,
                         "code": None}}


def client(base_url: str, timeout: float | httpx.Timeout = 30.0) -> httpx.Client:
    return httpx.Client(base_url=base_url + "/", headers=HEADERS, timeout=timeout,
                        trust_env=False)


def live_threads(name: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == name]


def test_504_then_commit_answers_first_and_commits_later(server: BackgroundServer,
                                                          api: Api) -> None:
    rules = [Rule(mode="504_then_commit", delay=0.5)]
    with Gateway(server.base_url, rules) as gateway, client(gateway.base_url) as http:
        response = http.post(f"threads/{THREAD_A}/runs", json=CREATE)
        assert response.status_code == 504
        assert response.json() == GATEWAY_504
        assert response.headers["x-request-id"].startswith("req_")
        assert api.runs(THREAD_A) == []  # told it failed, and it has not happened yet

        gateway.wait_idle()
        runs = api.runs(THREAD_A)
        assert [run["metadata"] for run in runs] == [{"suite": "gateway"}]
        assert gateway.committed == 1
        assert gateway.failures == []


def test_slow_outlives_a_client_that_gave_up(server: BackgroundServer, api: Api) -> None:
    rules = [Rule(mode="slow", delay=1.0)]
    timeout = httpx.Timeout(30.0, read=0.2)
    with Gateway(server.base_url, rules) as gateway, client(gateway.base_url, timeout) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post(f"threads/{THREAD_A}/runs", json=CREATE)
        gateway.wait_idle()
        assert len(api.runs(THREAD_A)) == 1
        assert gateway.committed == 1


def test_slow_relays_the_answer_to_a_patient_client(server: BackgroundServer, api: Api) -> None:
    rules = [Rule(mode="slow", delay=0.1)]
    with Gateway(server.base_url, rules) as gateway, client(gateway.base_url) as http:
        response = http.post(f"threads/{THREAD_A}/runs", json=CREATE)
        assert response.status_code == 200
        run = response.json()
        assert run["object"] == "thread.run"
        assert [r["id"] for r in api.runs(THREAD_A)] == [run["id"]]
        assert gateway.committed == 1


def test_pass_relays_lists_and_queries(server: BackgroundServer, api: Api) -> None:
    first, second = api.create(THREAD_B, CREATE), api.create(THREAD_B, CREATE)
    with Gateway(server.base_url) as gateway, client(gateway.base_url) as http:
        listed = http.get(f"threads/{THREAD_B}/runs", params={"limit": 100, "order": "asc"})
        one = http.get(f"threads/{THREAD_B}/runs", params={"limit": 1, "order": "asc"})
        created = http.post(f"threads/{THREAD_B}/runs", json=CREATE)
    assert listed.status_code == 200
    assert [run["id"] for run in listed.json()["data"]] == [first["id"], second["id"]]
    assert [run["id"] for run in one.json()["data"]] == [first["id"]]  # the query went along
    assert listed.headers["content-length"] == str(len(listed.content))
    assert created.status_code == 200  # no rule: a create passes at once
    assert len(api.runs(THREAD_B)) == 3
    assert gateway.committed == 0  # only delayed forwards count


def test_pass_relays_errors_with_body_and_request_id(server: BackgroundServer) -> None:
    path = f"threads/{THREAD_A}/runs/run_missing"
    with client(server.base_url) as direct:
        expected = direct.get(path)
    with Gateway(server.base_url) as gateway, client(gateway.base_url) as http:
        response = http.get(path)
    assert expected.status_code == 404
    assert response.status_code == 404
    assert response.json() == expected.json()
    assert response.json()["error"]["message"] == "No run found with id 'run_missing'."
    assert response.headers["x-request-id"].startswith("req_")
    assert response.headers["openai-version"] == expected.headers["openai-version"]


def test_limit_applies_to_the_first_matching_requests_only(server: BackgroundServer,
                                                           api: Api) -> None:
    rules = [Rule(mode="504_then_commit", delay=0.0, limit=1)]
    with Gateway(server.base_url, rules) as gateway, client(gateway.base_url) as http:
        statuses = [http.post(f"threads/{THREAD_A}/runs", json=CREATE).status_code
                    for _ in range(3)]
        gateway.wait_idle()
        assert statuses == [504, 200, 200]
        assert gateway.committed == 1
        assert len(api.runs(THREAD_A)) == 3  # the late one landed too


def test_rules_match_method_and_path_suffix(server: BackgroundServer, api: Api) -> None:
    rules = [Rule(mode="504_then_commit", delay=0.0)]
    run = api.create(THREAD_A, CREATE)
    with Gateway(server.base_url, rules) as gateway, client(gateway.base_url) as http:
        listed = http.get(f"threads/{THREAD_A}/runs")  # GET: not the rule's method
        modified = http.post(f"threads/{THREAD_A}/runs/{run['id']}",
                             json={"metadata": {"k": "v"}})  # not a ".../runs" path
        gateway.wait_idle()
    assert listed.status_code == 200
    assert modified.status_code == 200
    assert gateway.committed == 0


def test_forwards_the_original_request_and_records_it_redacted(server: BackgroundServer,
                                                               api: Api) -> None:
    rules = [Rule(mode="504_then_commit", delay=0.0)]
    with Gateway(server.base_url, rules) as gateway, client(gateway.base_url) as http:
        response = http.post(f"threads/{THREAD_A}/runs", params={"include[]": INCLUDE},
                             json=CREATE, headers={"Idempotency-Key": "abc"})
        gateway.wait_idle()
    assert response.status_code == 504
    (recorded,) = gateway.requests
    assert (recorded.method, recorded.path) == ("POST", f"/v1/threads/{THREAD_A}/runs")
    assert httpx.QueryParams(recorded.query)["include[]"] == INCLUDE
    assert recorded.json() == CREATE
    assert recorded.headers["authorization"] == REDACTED
    assert recorded.headers["idempotency-key"] == "abc"
    assert KEY not in repr(recorded)
    # the late forward carried the real key (else a 401) and the body (the metadata landed)
    assert gateway.failures == []
    assert [r["metadata"] for r in api.runs(THREAD_A)] == [CREATE["metadata"]]


def test_stopping_cancels_pending_forwards_and_leaves_no_thread(server: BackgroundServer,
                                                                 api: Api) -> None:
    rules = [Rule(mode="504_then_commit", delay=60.0)]
    with Gateway(server.base_url, rules) as gateway, client(gateway.base_url) as http:
        assert http.post(f"threads/{THREAD_A}/runs", json=CREATE).status_code == 504
        with pytest.raises(TimeoutError):
            gateway.wait_idle(timeout=0.01)
    assert live_threads("gateway") == []
    gateway.wait_idle(timeout=0)  # the cancelled forward counts as finished
    assert gateway.committed == 0
    assert api.runs(THREAD_A) == []


def test_starts_and_stops_many_times(server: BackgroundServer) -> None:
    ports = set()
    for _ in range(5):
        with Gateway(server.base_url) as gateway, client(gateway.base_url) as http:
            assert http.get(f"threads/{THREAD_A}/runs").status_code == 200
            ports.add(gateway.port)
        assert live_threads("gateway") == []
    assert all(port > 0 for port in ports)


def test_recording_stub_records_and_answers_404() -> None:
    with RecordingStub() as stub, client(stub.base_url) as http:
        assert stub.requests == []
        response = http.post(f"threads/{THREAD_A}/runs", json=CREATE)
    assert response.status_code == 404
    assert response.json() == {"error": {
        "message": f"Invalid URL (POST /v1/threads/{THREAD_A}/runs)",
        "type": "invalid_request_error", "param": None, "code": None}}
    assert response.headers["x-request-id"].startswith("req_")
    (recorded,) = stub.requests
    assert (recorded.method, recorded.path) == ("POST", f"/v1/threads/{THREAD_A}/runs")
    assert recorded.json() == CREATE
    assert recorded.headers["authorization"] == REDACTED
    assert live_threads("recording-stub") == []


def test_late_forward_keeps_the_query(server: BackgroundServer, api: Api) -> None:
    rules = [Rule(mode="504_then_commit", delay=0.0)]
    with Gateway(server.base_url, rules) as gateway, client(gateway.base_url) as http:
        response = http.post(f"threads/{THREAD_A}/runs", params={"include[]": "bogus"},
                             json=CREATE)
        gateway.wait_idle()
    assert response.status_code == 504
    # the emulator refused the query it was forwarded: nothing committed, and it says why
    assert gateway.committed == 0
    assert [failure.endswith("HTTP 400") for failure in gateway.failures] == [True]
    assert api.runs(THREAD_A) == []
