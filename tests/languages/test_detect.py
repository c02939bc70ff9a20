"""Scripts, detection and the refusal rule, without a service: what is refused and what is not."""

from __future__ import annotations

import pytest

from steadyvoice.languages.detect import detect
from steadyvoice.languages.refusal import unspoken
from steadyvoice.languages.scripts import letter_scripts, script_of

ZH = "您好，您本月的账单金额为四十二元。"  # noqa: RUF001 - the issue's own sentence
FOREIGN = {
    "zh": (ZH, "Han"),
    "ja": ("ご予約の確認をお願いします。", "Kana"),
    "ko": ("안녕하세요, 이번 달 청구 금액은 사십이 원입니다.", "Hangul"),
    "ru": ("Ваш баланс в этом месяце составляет сорок два рубля.", "Cyrillic"),
    "ar": ("رصيدك لهذا الشهر هو اثنان وأربعون دينارا.", "Arabic"),
    "hi": ("इस महीने आपका बिल बयालीस रुपये है।", "Devanagari"),
}

# Short English a bank, school or broadcaster sends, names and all: never refused for `en`.
ENGLISH = [
    "OK.",
    "Hello Maria.",
    "Thank you, Jürgen!",
    "Your PIN is 4521.",
    "See you in Zürich.",
    "Call Dr. García at noon.",
    "Pizza Margherita, please.",
    "Meet me at Café Paris tomorrow.",
    "Bon appétit, everyone!",
    "Ciao, Giulia and Marco.",
    "Your balance this month is forty-two pounds.",
    "The train to Amsterdam leaves at half past nine.",
    "Señor Gómez will call you back.",
    "Press one to speak to an agent.",
    "The π constant is about 3.14.",
    "Order #A-1234 ships on 2026-12-07.",
    "Welcome to the Müller & Søn annual meeting in Kraków.",
    "Anna, Marco, Giulia and Francesca will attend the meeting.",
    # Loanwords make these look French or German to the identifier; "the", "and" say English.
    "The menu features coq au vin, crème brûlée and pain au chocolat.",
    "Déjà vu, fiancé, naïve, résumé and café are English words too.",
    "Herr Schmidt und Frau Müller will join the call at 3 pm.",
]


@pytest.mark.parametrize("language", sorted(FOREIGN))
def test_each_script_is_named_with_its_language(language: str) -> None:
    text, script = FOREIGN[language]
    found = detect(text)
    assert (found.script, found.language) == (script, language)


def test_letters_only_count_and_japanese_is_told_from_chinese() -> None:
    assert script_of("中") == "Han" and script_of("ア") == "Kana" and script_of("é") == "Latin"
    assert letter_scripts("42, 3.5% …!? 。") == {}
    assert detect("東京駅で会いましょう。").language == "ja"  # Han-heavy, but kana: Japanese
    assert detect("北京欢迎你。").language == "zh"


@pytest.mark.parametrize("language", sorted(FOREIGN))
def test_every_foreign_script_is_refused_for_an_english_voice(language: str) -> None:
    text, script = FOREIGN[language]
    found = unspoken(text, ("en",))
    assert found is not None
    assert (found.script, found.language) == (script, language)


@pytest.mark.parametrize("text", ENGLISH)
def test_short_english_is_never_refused_for_english(text: str) -> None:
    assert unspoken(text, ("en",)) is None


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Der Zug nach Berlin hat zehn Minuten Verspätung.", "de"),
        ("Nous avons bien reçu votre paiement, merci beaucoup.", "fr"),
        ("Vivo en Sevilla desde hace dos años.", "es"),
        ("De vergadering begint morgen om negen uur.", "nl"),
        ("Vi har mottatt betalingen din, tusen takk for det.", "no"),
    ],
)
def test_a_clear_other_latin_language_is_refused_for_english(text: str, language: str) -> None:
    found = unspoken(text, ("en",))
    assert found is not None and found.script == "Latin" and found.language == language
    assert unspoken(text, (language,)) is None  # and spoken by a voice of that language


def test_a_quoted_english_title_does_not_make_german_english() -> None:
    text = (
        "Wir haben gestern den Film 'The Voice of the People' im Kino gesehen, und er hat uns "
        "allen sehr gut gefallen, besonders die Musik und die Bilder aus den Bergen."
    )
    found = unspoken(text, ("en",))
    assert found is not None and found.language == "de"


def test_short_or_unsure_latin_text_is_accepted() -> None:
    assert unspoken("Guten Morgen.", ("en",)) is None  # 2 words: too short to judge
    assert unspoken("Por favor, confirme su cita.", ("en",)) is None  # 4 words, p < 0.9


def test_mixed_text_latin_names_pass_other_scripts_do_not() -> None:
    # An English name in Chinese text for a Chinese voice: Latin letters are read by every voice.
    assert unspoken("请联系 John Smith 先生，电话是 12345。", ("zh",)) is None  # noqa: RUF001
    # A Chinese place name in an English sentence for an English voice: refused (Piper would
    # say "Chinese letter" twice), naming where; written in pinyin it is fine.
    found = unspoken("Welcome to 北京, the capital.", ("en",))
    assert found is not None and found.language == "zh" and found.first == "北京"
    assert found.position == 11 and found.letters == 2
    assert unspoken("Welcome to Beijing, the capital.", ("en",)) is None
    # Lone Greek letters are symbols every voice names; Greek words are not.
    assert unspoken("The α particle and π.", ("en",)) is None  # noqa: RUF001
    assert unspoken("Καλημέρα σας, the meeting starts now.", ("en",)) is not None


def test_a_voice_of_any_language_takes_anything() -> None:
    for text, _ in FOREIGN.values():
        assert unspoken(text, ("*",)) is None


def test_multilingual_voices_take_each_of_their_scripts() -> None:
    cosyvoice = ("zh", "en", "ja", "ko", "yue")
    for language in ("zh", "ja", "ko"):
        assert unspoken(FOREIGN[language][0], cosyvoice) is None
    found = unspoken(FOREIGN["ru"][0], cosyvoice)
    assert found is not None and found.language == "ru"
