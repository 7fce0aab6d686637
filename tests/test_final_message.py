from app import final_message


def test_known_placeholders_render_with_russian_plurals():
    text = final_message.render(
        "{name}: {balance}", name="Маша", surname="И", balance=21, shift="Умею жить"
    )
    assert text == "Маша: 21 ломбарьерчик"
    assert (
        final_message.render("{balance}", name="", surname="", balance=3, shift="")
        == "3 ломбарьерчика"
    )
    assert (
        final_message.render("{balance}", name="", surname="", balance=11, shift="")
        == "11 ломбарьерчиков"
    )


def test_unknown_placeholder_or_broken_braces_are_rejected_at_save_time():
    assert "{age}" in final_message.problem("Привет, {name}! Тебе {age}")
    assert "скобки" in final_message.problem("Привет, {name")
    assert final_message.problem("   ") == "Напишите текст сообщения."
    assert final_message.problem(final_message.DEFAULT) is None
