"""Which offline language identifier decides Latin-script text: lingua vs py3langid.

Short sentences (2 to 12 words) written for this benchmark in English, German, French, Spanish,
Italian, Dutch and Portuguese. For each identifier, restricted to the Latin-script languages
steadyvoice considers (``LATIN_LANGUAGES`` of :mod:`steadyvoice.languages.detect`): accuracy of
the top guess, accuracy among sentences of 3 words or fewer, how many English sentences would
be refused for an English voice under each identifier's refusal rule, time per call and the
memory the loaded identifier adds.

Usage: ``python bench/language_id.py`` (each identifier runs in its own process, for memory;
lingua, which steadyvoice does not depend on, needs ``pip install lingua-language-detector``).
Prints a Markdown table. "memory MB" is the growth of the process's resident memory (Linux)
from loading the identifier and its models (numpy included for py3langid; the API process has
numpy already).
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time

from steadyvoice.languages.detect import CONFIDENT, LATIN_LANGUAGES, MIN_WORDS, word_count
from steadyvoice.languages.refusal import DOUBT

SENTENCES: dict[str, list[str]] = {
    "en": [
        "Hello Maria.",
        "Thank you, Jürgen!",
        "Your PIN is 4521.",
        "See you in Zürich.",
        "Call Dr. García at noon.",
        "Meet me at Café Paris tomorrow.",
        "Your balance this month is forty-two pounds.",
        "The train to Amsterdam leaves at half past nine.",
        "Please confirm your appointment by replying to this message.",
        "We have received your payment, thank you.",
        "The weather will be sunny with light winds.",
        "Press one to speak to an agent.",
        "Pizza Margherita, please.",
        "Good morning, everyone.",
        "Your parcel has been delivered to the reception desk.",
    ],
    "de": [
        "Guten Morgen.",
        "Vielen Dank für Ihren Einkauf.",
        "Der Zug nach Berlin hat zehn Minuten Verspätung.",
        "Ihr Kontostand beträgt zweiundvierzig Euro.",
        "Bitte bestätigen Sie Ihren Termin.",
        "Wir haben Ihre Zahlung erhalten.",
        "Das Wetter wird morgen sonnig und warm.",
        "Drücken Sie die Eins für den Kundendienst.",
        "Ich wohne seit zwei Jahren in München.",
        "Die Sitzung beginnt um neun Uhr.",
    ],
    "fr": [
        "Bonjour à tous.",
        "Merci pour votre achat.",
        "Le train pour Lyon a dix minutes de retard.",
        "Votre solde est de quarante-deux euros.",
        "Veuillez confirmer votre rendez-vous.",
        "Nous avons bien reçu votre paiement.",
        "Il fera beau et chaud demain.",
        "Appuyez sur un pour parler à un conseiller.",
        "J'habite à Paris depuis deux ans.",
        "La réunion commence à neuf heures.",
    ],
    "es": [
        "Buenos días.",
        "Gracias por su compra.",
        "El tren a Madrid tiene diez minutos de retraso.",
        "Su saldo es de cuarenta y dos euros.",
        "Por favor, confirme su cita.",
        "Hemos recibido su pago.",
        "Mañana hará sol y calor.",
        "Pulse uno para hablar con un agente.",
        "Vivo en Sevilla desde hace dos años.",
        "La reunión empieza a las nueve.",
    ],
    "it": [
        "Buongiorno a tutti.",
        "Grazie per il suo acquisto.",
        "Il treno per Roma ha dieci minuti di ritardo.",
        "Il suo saldo è di quarantadue euro.",
        "La preghiamo di confermare l'appuntamento.",
        "Abbiamo ricevuto il suo pagamento.",
        "Domani farà bello e caldo.",
        "Prema uno per parlare con un operatore.",
        "Abito a Milano da due anni.",
        "La riunione inizia alle nove.",
    ],
    "nl": [
        "Goedemorgen allemaal.",
        "Bedankt voor uw aankoop.",
        "De trein naar Utrecht heeft tien minuten vertraging.",
        "Uw saldo is tweeënveertig euro.",
        "Bevestig alstublieft uw afspraak.",
        "Wij hebben uw betaling ontvangen.",
        "Morgen wordt het zonnig en warm.",
        "Druk op één om een medewerker te spreken.",
        "Ik woon al twee jaar in Rotterdam.",
        "De vergadering begint om negen uur.",
    ],
    "pt": [
        "Bom dia a todos.",
        "Obrigado pela sua compra.",
        "O comboio para Lisboa está atrasado dez minutos.",
        "O seu saldo é de quarenta e dois euros.",
        "Por favor, confirme a sua consulta.",
        "Recebemos o seu pagamento.",
        "Amanhã vai estar sol e calor.",
        "Prima um para falar com um assistente.",
        "Moro no Porto há dois anos.",
        "A reunião começa às nove horas.",
    ],
}

_CHILD = r"""
import json, sys, time
name, codes = sys.argv[1], sys.argv[2].split(",")


def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


before = rss_kb()


def lingua_guess(low=False):
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    lingua_code = {"no": "nb"}  # lingua has Bokmål and Nynorsk, not "no"
    langs = [
        Language.from_iso_code_639_1(getattr(IsoCode639_1, lingua_code.get(c, c).upper()))
        for c in codes
    ]
    builder = LanguageDetectorBuilder.from_languages(*langs)
    detector = (builder.with_low_accuracy_mode() if low else builder).build()

    def guess(text, voice_language):
        values = detector.compute_language_confidence_values(text)
        scores = {v.language.iso_code_639_1.name.lower(): v.value for v in values}
        scores["no"] = scores.pop("nb", 0.0)
        best = max(scores, key=scores.__getitem__)
        return best, scores[best], scores.get(voice_language, 0.0)

    return guess


def py3langid_guess():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(codes)

    def guess(text, voice_language):
        scores = {lang: float(p) for lang, p in ident.rank(text)}
        best = max(scores, key=scores.__getitem__)
        return best, scores[best], scores.get(voice_language, 0.0)

    return guess


started = time.perf_counter()
guess = {
    "lingua": lingua_guess,
    "lingua-low": lambda: lingua_guess(low=True),
    "py3langid": py3langid_guess,
}[name]()
guess("warm up the models", "en")
load = time.perf_counter() - started
out = []
for language, text in json.loads(sys.stdin.read()):
    t = time.perf_counter()
    best, confidence, own = guess(text, "en")
    out.append([language, text, best, confidence, own, time.perf_counter() - t])
after = rss_kb()
print(json.dumps({"load": load, "rss_mb": (after - before) / 1024, "rows": out}))
"""
IDENTIFIERS = ("lingua", "lingua-low", "py3langid")


def run(name: str) -> dict[str, object]:
    pairs = [[lang, text] for lang, texts in SENTENCES.items() for text in texts]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, name, ",".join(sorted(LATIN_LANGUAGES))],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def refuses(text: str, best: str, probability: float, english: float) -> bool:
    """steadyvoice's rule for a Latin-script text to an English voice (languages.refusal)."""
    return (
        word_count(text) >= MIN_WORDS
        and best != "en"
        and probability >= CONFIDENT
        and english < DOUBT
    )


def main() -> None:

    print(
        "| identifier | top-1 accuracy | ≤3 words | English refused for `en` | "
        "other languages refused for `en` | ms/call (median, max) | load s | memory MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in IDENTIFIERS:
        result = run(name)
        rows = result["rows"]
        assert isinstance(rows, list)
        right = sum(1 for r in rows if r[0] == r[2])
        short = [r for r in rows if len(r[1].split()) <= 3]
        short_right = sum(1 for r in short if r[0] == r[2])
        en_refused = [r[1] for r in rows if r[0] == "en" and refuses(r[1], r[2], r[3], r[4])]
        other = [r for r in rows if r[0] != "en"]
        other_refused = sum(1 for r in other if refuses(r[1], r[2], r[3], r[4]))
        times = [r[5] * 1000 for r in rows]
        print(
            f"| {name} | {right}/{len(rows)} | {short_right}/{len(short)} | "
            f"{len(en_refused)}/{len(SENTENCES['en'])} | {other_refused}/{len(other)} | "
            f"{statistics.median(times):.2f}, {max(times):.2f} | {result['load']:.2f} | "
            f"{result['rss_mb']:.0f} |"
        )
        for text in en_refused:
            print(f"|   English refused: {text!r} |||||||")
        wrong = [f"{r[0]}→{r[2]}: {r[1]!r}" for r in rows if r[0] != r[2]]
        print(f"<!-- {name} wrong: {'; '.join(wrong)} -->")
    print(
        f"\n{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )


if __name__ == "__main__":
    main()
