"""Registration through the WebApp: initData checks, field validation, the rules, the confirmation."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import pytest
from sqlmodel import select

from app import clock, registration, webapp
from app.errors import InitDataError
from app.models import (
    Application,
    ApplicationStatus,
    OutgoingMessage,
    Participant,
    ShiftStatus,
)
from tests import factories
from tests.bot_support import deliver, init_data, post_update, text_update
from tests.fake_telegram import TOKEN

UID = 777001
GOOD = {
    "name": "анна-мария",
    "surname": "Иванова",
    "date_of_birth": "2014-03-08",
    "city": "Ростов-на-Дону",
    "phone": "8 (912) 345-67-89",
    "consent": "on",
}


def _post(client, fields=None, *, uid=UID, data=None, json=True):
    body = dict(GOOD if fields is None else fields)
    body["init_data"] = init_data(uid) if data is None else data
    headers = {"Accept": "application/json"} if json else {}
    return client.post("/telegram/registration", data=body, headers=headers)


@pytest.fixture
def preparing(db, noon, bot_settings):
    return factories.make_shift(
        db, status=ShiftStatus.preparing, start=clock.local_today() + timedelta(days=10)
    )


def test_form_page_loads_telegram_script_and_has_no_personal_data(bot_client):
    page = bot_client.get("/telegram/registration")
    assert page.status_code == 200
    assert '<script src="https://telegram.org/js/telegram-web-app.js"></script>' in page.text
    assert 'for="f-phone"' in page.text and 'aria-describedby="h-phone e-phone"' in page.text
    assert "registration.css" in page.text and "registration.js" in page.text


def test_happy_path_registers_and_the_bot_confirms(db, bot_client, fake_tg, preparing):
    response = _post(bot_client)
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    p = db.exec(select(Participant).where(Participant.telegram_id == UID)).one()
    assert (p.name, p.surname, p.city) == ("Анна-Мария", "Иванова", "Ростов-на-Дону")
    assert p.phone == "+7 912 345-67-89" and p.date_of_birth == date(2014, 3, 8)
    assert p.consent_at is not None and p.consent_version == registration.CONSENT_VERSION
    req = db.exec(select(Application).where(Application.participant_id == p.id)).one()
    assert req.status == ApplicationStatus.pending and req.shift_id == preparing.id
    assert deliver() == 1
    assert "Заявка в смену" in fake_tg.texts(UID)[0]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("name", "", "Напишите имя"),
        ("name", "Anna", "русские буквы"),
        ("name", "Анна1", "русские буквы"),
        ("surname", "-", "русские буквы"),
        ("surname", "Я", "две буквы"),
        ("city", "Moscow", "Русскими буквами"),
        ("city", "", "Напишите город"),
        ("date_of_birth", "", "Укажите дату"),
        ("date_of_birth", "32.13.2015", "ДД.ММ.ГГГГ"),
        ("date_of_birth", "2099-01-01", "в будущем"),
        ("date_of_birth", "1890-01-01", "Проверьте год"),
        ("phone", "", "Укажите номер"),
        ("phone", "+7 495 123-45-67", "мобильный"),
        ("phone", "+1 202 555 0143", "мобильный"),
        ("phone", "12345", "мобильный"),
        ("consent", "", "согласия"),
    ],
)
def test_each_bad_field_gets_a_russian_error_and_nothing_is_written(
    db, bot_client, preparing, field, value, fragment
):
    fields = dict(GOOD, **{field: value})
    response = _post(bot_client, fields)
    assert response.status_code == 422
    assert fragment.lower() in response.json()["errors"][field].lower()
    assert db.exec(select(Participant)).all() == []
    assert db.exec(select(OutgoingMessage)).all() == []


def test_too_young(db, bot_client, preparing):
    young = (clock.local_today() - timedelta(days=365)).isoformat()
    response = _post(bot_client, dict(GOOD, date_of_birth=young))
    assert "с 3 лет" in response.json()["errors"]["date_of_birth"]


def test_errors_render_next_to_fields_without_javascript(db, bot_client, preparing):
    response = _post(bot_client, dict(GOOD, city="Moscow"), json=False)
    assert response.status_code == 422
    assert 'id="e-city" data-error-for="city">Русскими буквами' in response.text
    assert 'aria-invalid="true"' in response.text
    assert 'value="Moscow"' in response.text  # what was typed is kept


@pytest.mark.parametrize("case", ["missing", "forged", "other_token", "expired", "future"])
def test_bad_init_data_is_refused(db, bot_client, preparing, case):
    now = int(clock.now().timestamp())
    data = {
        "missing": "",
        "forged": init_data(UID).replace("777001", "777002"),
        "other_token": init_data(UID, token="999:other"),
        "expired": init_data(UID, auth_date=now - 3 * 3600),
        "future": init_data(UID, auth_date=now + 3600),
    }[case]
    response = _post(bot_client, data=data)
    assert response.status_code == 403
    assert "Откройте форму" in response.json()["message"]
    assert db.exec(select(Participant)).all() == []


def _signed(**fields: str) -> str:
    from urllib.parse import urlencode

    fields["hash"] = webapp.sign(TOKEN, fields)
    return urlencode(fields)


@pytest.mark.parametrize("uid", [2**70, 2**63, 1e308, "abc", "777001", True, -1, 0, None, 7.0])
@pytest.mark.parametrize("action", ["submit", "prefill"])
def test_odd_user_ids_in_signed_init_data_are_refused_not_5xx(
    db, bot_client, preparing, uid, action
):
    """Correctly signed, yet an id the database cannot hold (or not an id at all): a 403 with the
    form's Russian message, on both databases, never a 5xx or a dropped connection."""
    now = str(int(clock.now().timestamp()))
    user = json.dumps({"id": uid, "first_name": "Маша"}) if uid is not None else '{"x": 1}'
    body = dict(GOOD, action=action, init_data=_signed(auth_date=now, user=user))
    response = bot_client.post(
        "/telegram/registration", data=body, headers={"Accept": "application/json"}
    )
    assert response.status_code == 403, response.text
    assert "Откройте форму" in response.json()["message"]
    plain = bot_client.post("/telegram/registration", data=dict(body, action=action))
    assert plain.status_code == 403 and "Откройте форму" in plain.text
    assert db.exec(select(Participant)).all() == []


@pytest.mark.parametrize(
    "auth_date", ["1e308", "9" * 30, "99999999999999999", "-99999999999999", "abc", "", "1.5"]
)
def test_odd_auth_dates_are_refused_not_5xx(db, bot_client, preparing, auth_date):
    user = json.dumps({"id": UID, "first_name": "Маша"})
    response = _post(bot_client, data=_signed(auth_date=auth_date, user=user))
    assert response.status_code == 403
    assert db.exec(select(Participant)).all() == []


@pytest.mark.parametrize("user", ["[1]", '"abc"', "5", "null", "[" * 1100 + "]" * 1100, "{"])
def test_odd_user_objects_are_refused_not_5xx(db, bot_client, preparing, user):
    now = str(int(clock.now().timestamp()))
    response = _post(bot_client, data=_signed(auth_date=now, user=user))
    assert response.status_code == 403


def test_verify_uses_the_documented_algorithm():
    fields = {"auth_date": str(int(time.time())), "user": '{"id": 5}'}
    fields["hash"] = webapp.sign(TOKEN, fields)
    from urllib.parse import urlencode

    clock.set_now(None)
    assert webapp.verify(TOKEN, urlencode(fields)).id == 5
    with pytest.raises(InitDataError):
        webapp.verify(TOKEN, urlencode(fields) + "&extra=1")


def test_prefill_returns_the_participants_data_by_post_only(db, bot_client, preparing):
    factories.make_participant(db, telegram_id=UID, name="Петя", phone="+7 922 111-22-33")
    response = bot_client.post(
        "/telegram/registration",
        data={"action": "prefill", "init_data": init_data(UID)},
        headers={"Accept": "application/json"},
    )
    assert response.json()["values"]["name"] == "Петя"
    assert response.json()["values"]["phone"] == "+7 922 111-22-33"
    stranger = bot_client.post(
        "/telegram/registration",
        data={"action": "prefill", "init_data": ""},
        headers={"Accept": "application/json"},
    )
    assert stranger.status_code == 403 and stranger.json()["values"] == {}


def test_phone_owned_by_someone_else(db, bot_client, preparing):
    factories.make_participant(db, phone="+7 912 345-67-89")
    response = _post(bot_client)
    assert response.status_code == 422
    assert "у другого участника" in response.json()["errors"]["phone"]
    assert db.exec(select(Application)).all() == []


def test_closed_window(db, bot_client, noon, bot_settings):
    factories.make_shift(db, start=clock.local_today() - timedelta(days=5))
    response = _post(bot_client)
    assert response.status_code == 422 and "запись закрыта" in response.json()["message"]
    assert db.exec(select(Participant)).all() == []


def test_started_shift_is_open_for_its_first_days(db, bot_client, noon, bot_settings):
    shift = factories.make_shift(db, start=clock.local_today() - timedelta(days=1))
    assert _post(bot_client).status_code == 200
    assert db.exec(select(Application)).one().shift_id == shift.id


def test_one_request_per_shift_and_reapplications_are_limited(db, bot_client, preparing):
    assert _post(bot_client).json()["ok"]
    assert _post(bot_client).json()["ok"]  # data edit while pending: still one request
    req = db.exec(select(Application)).one()
    assert req.attempts == 1
    for attempt in (2, 3):
        req.status = ApplicationStatus.declined
        req.decline_reason = "Нет мест"
        db.add(req)
        db.commit()
        assert _post(bot_client).json()["ok"]
        db.refresh(req)
        assert (req.status, req.attempts, req.decline_reason) == (
            ApplicationStatus.pending,
            attempt,
            None,
        )
    req.status = ApplicationStatus.declined
    db.add(req)
    db.commit()
    response = _post(bot_client)
    assert response.status_code == 422 and "не больше 3 раз" in response.json()["message"]
    db.refresh(req)
    assert req.status == ApplicationStatus.declined and req.attempts == 3


def test_editing_data_never_demotes_an_approved_member(db, bot_client, preparing):
    p = factories.make_participant(db, telegram_id=UID, phone="+7 912 000-00-01")
    factories.make_application(db, p, preparing, status=ApplicationStatus.approved)
    response = _post(bot_client, dict(GOOD, city="Уфа"))
    assert response.json()["ok"] and "по-прежнему участник" in response.json()["message"]
    db.expire_all()
    assert db.exec(select(Application)).one().status == ApplicationStatus.approved
    assert db.get(Participant, p.id).city == "Уфа"
    assert db.get(Participant, p.id).phone == "+7 912 345-67-89"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+79123456789", "+7 912 345-67-89"),
        ("89123456789", "+7 912 345-67-89"),
        ("8 (912) 345-67-89", "+7 912 345-67-89"),
        ("9123456789", "+7 912 345-67-89"),
        ("+7 495 123-45-67", None),
        ("+380501234567", None),
        ("", None),
        ("+7 912 345-67-8", None),
    ],
)
def test_phone_normalisation(raw, expected):
    assert registration.normalise_phone(raw) == expected


def test_start_offers_the_webapp_button_when_open(db, bot_client, fake_tg, preparing):
    post_update(bot_client, text_update(UID, "/start"))
    deliver()
    call = fake_tg.sent("sendMessage")[0]
    assert "web_app" in call.params["reply_markup"]
    assert "https://lomaya.example.org/telegram/registration" in call.params["reply_markup"]


def test_start_when_closed_points_to_the_community(db, bot_client, fake_tg, noon, bot_settings):
    from app.settings import set_settings

    set_settings(bot_settings.with_overrides(community_url="https://vk.com/lomaya"))
    post_update(bot_client, text_update(UID, "/start"))
    deliver()
    text = fake_tg.texts(UID)[0]
    assert "запись закрыта" in text and "https://vk.com/lomaya" in text
