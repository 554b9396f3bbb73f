"""Server-rendered pages: login, my folders, a case with its images, search."""

import re

from archive import cases, folders, users
from archive.cases import CaseUpdate


def page_login(client, name):
    response = client.post("/login", data={"username": name, "password": f"pw-{name}-for-tests-only", "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response


def make_case(casebank, owner, **content):
    with casebank.database.session() as session:
        user = users.get_user(session, owner)
        return cases.create_case(session, user, folders.personal_folder(session, user).id, CaseUpdate(**content)).id


def test_pages_need_login_and_return_to_where_you_were(client, make_user):
    make_user("alice")
    response = client.get("/search?q=liver", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/search%3Fq%3Dliver"
    login_page = client.get(response.headers["location"])
    assert 'name="next" value="/search?q=liver"' in login_page.text
    done = client.post("/login", data={"username": "alice", "password": "pw-alice-for-tests-only", "next": "/search?q=liver"}, follow_redirects=False)
    assert done.headers["location"] == "/search?q=liver"


def test_login_form_shows_the_error(client, make_user):
    make_user("alice")
    response = client.post("/login", data={"username": "alice", "password": "wrong"})
    assert response.status_code == 401
    assert "unknown user name or wrong password" in response.text


def test_login_refuses_to_redirect_off_site(client, make_user):
    make_user("alice")
    response = client.post("/login", data={"username": "alice", "password": "pw-alice-for-tests-only", "next": "//evil.example/"}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_my_folders_lists_my_cases(client, casebank, make_user):
    make_user("alice")
    case_id = make_case(casebank, "alice", title="Aortic dissection")
    page_login(client, "alice")
    page = client.get("/").text
    assert "/alice" in page
    assert f'<a href="/cases/{case_id}">Aortic dissection</a>' in page


def test_case_page_is_editable_by_its_owner_and_read_only_for_viewers(client, casebank, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    case_id = make_case(casebank, "alice", title="Aortic dissection", findings="Intimal flap")
    with casebank.database.session() as session:
        folders.grant(session, alice, folders.personal_folder(session, alice), bob, view=True)
    page_login(client, "alice")
    page = client.get(f"/cases/{case_id}").text
    assert f'action="/cases/{case_id}"' in page
    saved = client.post(f"/cases/{case_id}", data={"title": "Type A aortic dissection", "findings": "Intimal flap", "keywords": "aorta, CTA"}, follow_redirects=False)
    assert saved.status_code == 303
    assert "Type A aortic dissection" in client.get(f"/cases/{case_id}").text
    client.post("/logout")
    page_login(client, "bob")
    page = client.get(f"/cases/{case_id}").text
    assert "Type A aortic dissection" in page and "Intimal flap" in page
    assert f'action="/cases/{case_id}"' not in page
    refused = client.post(f"/cases/{case_id}", data={"title": "bob was here"}, headers={"accept": "text/html"})
    assert refused.status_code == 403 and "bob may not edit case" in refused.text


def test_a_case_you_may_not_see_shows_an_error_page(client, casebank, make_user):
    make_user("alice"), make_user("carol")
    case_id = make_case(casebank, "alice", title="Secret")
    page_login(client, "carol")
    response = client.get(f"/cases/{case_id}", headers={"accept": "text/html"})
    assert response.status_code == 404  # as if it did not exist: no probing for IDs
    assert "<h1>Not Found</h1>" in response.text and "Secret" not in response.text and "alice" not in response.text


def test_search_page_finds_by_stemmed_words(client, casebank, make_user):
    make_user("alice")
    case_id = make_case(casebank, "alice", title="Multiple pulmonary nodules", findings="Cannonball metastases")
    page_login(client, "alice")
    page = client.get("/search", params={"q": "nodule"}).text
    assert "1 case for" in page
    assert re.search(rf'href="/cases/{case_id}">Multiple pulmonary nodules<', page)
    assert "0 cases for" in client.get("/search", params={"q": "fracture"}).text


def test_search_page_has_facets_removable_filter_chips_snippets_and_sort(client, casebank, make_user):
    import html as html_lib

    make_user("alice")
    make_case(casebank, "alice", title="Liver abscess", findings="Rim enhancing collection", keywords=["liver"])
    make_case(casebank, "alice", title="Hepatic cyst", findings="Simple cyst", keywords=["liver", "benign"])
    page_login(client, "alice")
    page = client.get("/search", params={"q": "liver OR hepatic"}).text
    assert "2 cases for" in page and 'data-facet="keyword"' in page
    benign = html_lib.unescape(re.search(r'href="(/search\?[^"]*filter=keyword%3Abenign[^"]*)"', page).group(1))
    narrowed = client.get(benign).text
    assert "1 case for" in narrowed and "Hepatic cyst" in narrowed and "Liver abscess" not in narrowed
    chip = html_lib.unescape(re.search(r'<a class="chip" href="([^"]+)"', narrowed).group(1))
    assert "filter" not in chip and "2 cases for" in client.get(chip).text  # the chip removes the filter
    snippet = client.get("/search", params={"q": "collection"}).text
    assert '<p class="snippet">Rim enhancing <mark>collection</mark></p>' in snippet
    assert '<option value="date" selected>' in client.get("/search", params={"q": "liver", "sort": "date"}).text


def test_case_page_likes_codes_from_the_terminology_attachments_and_history(client, casebank, make_user):
    import io

    from PIL import Image

    make_user("alice"), make_user("bob")
    case_id = make_case(casebank, "alice", title="Liver lesion")
    with casebank.database.session() as session:
        alice = users.get_user(session, "alice")
        folders.grant(session, alice, folders.personal_folder(session, alice), users.get_user(session, "bob"), view=True)
    page_login(client, "alice")
    client.post(f"/cases/{case_id}/like")
    assert '<span class="like-count">1</span>' in client.get(f"/cases/{case_id}").text

    # the autocomplete offers ICD-10 terms; the form posts what it filled in
    suggestion = client.get("/api/terminology/ICD10/suggest", params={"q": "liver cell"}).json()[0]
    assert suggestion["code"] == "C22.0"
    client.post(f"/cases/{case_id}/codes", data={"system": "ICD10", "code": f"{suggestion['code']} {suggestion['display']}"})
    page = client.get(f"/cases/{case_id}").text
    assert "<code>ICD10 C22.0</code> Malignant neoplasm: Liver cell carcinoma" in page
    unknown = client.post(f"/cases/{case_id}/codes", data={"system": "ICD10", "code": "Q99.99.9"}, headers={"accept": "text/html"})
    assert unknown.status_code == 422 and "has no code" in unknown.text

    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 80, 120)).save(buffer, format="JPEG")
    client.post(f"/cases/{case_id}/attachments", files={"file": ("histology.jpg", buffer.getvalue(), "image/jpeg")})
    page = client.get(f"/cases/{case_id}").text
    assert 'alt="histology.jpg" class="attachment-thumb"' in page
    assert "History (" in page and "attachment added histology.jpg" in page and "updated (codes)" in page

    page_login(client, "bob")  # a viewer: sees codes and attachments, no editing, no history
    page = client.get(f"/cases/{case_id}").text
    assert "ICD10 C22.0" in page and "histology.jpg" in page
    assert 'class="inline-form code-form"' not in page and "History (" not in page
    assert client.post(f"/cases/{case_id}/codes", data={"system": "ICD10", "code": "C22.0"},
                       headers={"accept": "text/html"}).status_code == 403
    client.post(f"/cases/{case_id}/like")
    assert '<span class="like-count">2</span>' in client.get(f"/cases/{case_id}").text
