"""Geo-words: from OCR text and the human description, the words worth indexing and the places named.

Captions like "GRUSS AUS MÜNCHEN - Marienplatz  No. 1234  Verlag Karl Braun" carry one place and
a lot of boilerplate. We strip boilerplate (postcard/greeting formulas, publishers, "made in",
serial numbers), fix OCR digit/letter swaps inside words, match the longest name first against
the gazetteer (multi-word names like "Rio de Janeiro") and the collection's own landmark lexicon,
and allow fuzzy matches only for long, non-generic words so "bridge" never becomes a town.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .gazetteer import Gazetteer, GeoEntry, get_gazetteer
from .normalize import fix_mojibake, fold

if TYPE_CHECKING:  # the lexicon is built with this module's extractor; only the type is needed here
    from .landmarks import LandmarkLexicon

STOPWORDS = set("""
a an the and or of in on at to from for by with as is are was were be this that these those it its
near over under into onto up down out his her their our your my no not but if so than then there here
le la les l un une des du de d et ou au aux en dans sur sous par pour avec sans ce cet cette ces est
der die das den dem des ein eine einer eines und oder im am an auf aus bei mit nach von vom zu zum zur
ist sind vor hinter ueber unter
el la los las lo un una unos unas y o de del al en con por para sin su sus es
il lo la i gli le un uno una e o di del della dello dei degli delle da dal dalla nel nella sul sulla
con per tra fra ed ad
""".split())

# Landmark-type and view words: kept as search words, never matched to a town on their own.
GENERIC = set("""
view views vue vues ansicht blick veduta vista vistas panorama general generale partial partielle
teilansicht totale totalansicht souvenir greetings gruss gruesse saluti ricordo recuerdo
city town village ville stadt citta ciudad cite old new vieux vieille alt vecchio viejo nouveau neue
street streets rue strasse gasse via viale calle avenue avenida boulevard road lane corso
square place platz markt marktplatz piazza plaza praca market marche mercato mercado
church eglise kirche chiesa iglesia cathedral cathedrale dom duomo cattedrale catedral basilica
basilique chapel chapelle kapelle cappella capilla abbey abbaye abtei abbazia convent couvent kloster
convento monastery temple tempel tempio templo mosque mosquee moschee synagogue
bridge bridges pont brucke bruecke ponte puente tower tour turm torre castle chateau schloss burg
castello castillo palace palais palast palazzo palacio hall hotel grand central royal imperial
museum musee museo theatre theater teatro opera station gare bahnhof stazione estacion harbour harbor
port hafen porto puerto quay quai beach plage strand spiaggia playa lake lac see lago river fleuve
riviere fluss fiume rio mountain mountains mount mont monte berg mountains valley vallee tal valle
island ile insel isola isla bay baie bucht baia bahia park parc garten giardino jardin gardens garden
monument denkmal monumento ruins ruines ruinen rovine ruinas gate porte tor porta puerta fountain
fontaine brunnen fontana fuente hill colline cascade falls waterfall cascata wasserfall coast cote
kuste costa cliff cliffs rock rocks rocher university universite universitat hospital school ecole
schule house maison haus casa villa building rathaus town-hall hotel-de-ville mairie municipio
interior interieur inneres entrance entree eingang north south east west nord sud est ouest
upper lower haute basse ober unter little great big saint sainte san santa santo st ste sankt
promenade esplanade quartier viertel district boulevard pier jetee mole lighthouse phare leuchtturm
faro praia playa piedra tipo ruinas camp barracks caserne kaserne fort forte fortress festung colour color colorized photo
photograph lithograph collotype halftone cardstock ink postcard card real type tipo typical
room rooms salle salon sala saal zimmer chambre camera cuarto gallery galerie galleria galeria
chaire pulpit kanzel pulpito altar autel altare staircase escalier treppe scalone escalera
library bibliotheque bibliothek biblioteca
""".split())

# English words that are also towns ("The Salt Seller", "Reading Room"): matched only when written
# in capitals (a caption), found by OCR, or when the text names the town's country.
AMBIGUOUS = set("""
salt bath reading mobile split orange best van colon male gap hope deal march wells sale goes
grace union liberty independence eagle sandy spring
""".split())

# Words after which a name belongs to a landmark, not a town ("Piazza San Marco", "Hotel de Paris").
LANDMARK_HEADS = set("""
piazza place platz plaza praca rue via viale calle street avenue avenida boulevard corso square
church eglise kirche chiesa iglesia basilica basilique cathedral cathedrale catedral cattedrale
hotel palazzo palais palacio palace porta porte puerta gate ponte pont puente bridge torre tower
tour castello castillo chateau schloss museum musee museo theatre teatro teatre
""".split())
CONNECTORS = {"de", "di", "da", "del", "della", "dei", "des", "du", "la", "le", "of", "the", "von", "van",
              "y", "e", "do", "dos", "das", "al", "el", "l", "d", "sur", "am", "an", "im", "upon", "on"}
ABBREV = {"st", "ste", "sta", "mt", "s", "ft", "pt", "dr", "gral", "gen"}

_BOILERPLATE = [
    r"\bpost\s*-?\s*cards?\b", r"\bcartes?\s+postales?\b", r"\bcartolin[ae](\s+postal[ei])?\b",
    r"\bpostkarten?\b", r"\bansichtskarten?\b", r"\btarjetas?\s+postal(es)?\b", r"\bbilhete\s+postal\b",
    r"\bunion\s+postale\s+universelle\b", r"\bweltpostverein\b",
    r"\bgreetings\s+from\b", r"\bgr(u|ü|ue)(ss|ß)e?\s+(aus|vom|von)\b", r"\bsouvenir\s+(de|d'|du|des|of|from)\b",
    r"\bsaluti\s+da\b", r"\bricordo\s+di\b", r"\brecuerdo\s+de\b", r"\bgroeten\s+uit\b", r"\bhilsen\s+fra\b",
    r"\b(made|printed|imprim[ée]e?|gedruckt|stampato|impreso)\s+(in|en)\s+[\w.]+(\s+[A-Z][\w.]*)?",
    r"\bcopyright(ed)?\b(\s+(by|\d{4}))?", r"©", r"\(c\)\s*\d*", r"\ball\s+rights\s+reserved\b",
    r"\breproduction\s+interdite\b", r"\bnachdruck\s+verboten\b", r"\bd[ée]pos[ée]e?\b", r"\bgesch(ützt|uetzt)\b",
    r"\b(place|affix)\s+(a\s+)?stamp(\s+here)?\b", r"\bthis\s+space\s+for\b[^\n.]*", r"\b(for\s+)?address(\s+only)?\b",
    r"\bcorrespondance\b", r"\bcorrespondence\b", r"\badresse\b", r"\btimbre\b",
    r"\b(no|nr|num|n°|nº|série|serie|series|ser)\.?\s*[a-z]?\d[\d\-/a-z]*\b", r"\b\d+[a-z]?\b",
    # publisher / printer / photographer credits up to the end of the clause
    r"\b(phot|photo|ph|edit|edite|édit|éd|ed|edition|édition|editore|editor|verlag|verl|druck|"
    r"imp|impr|imprimerie|lith|litho|clich[ée]|cl|publ|published|publisher|pub)\b\.?\s*(by|de|von|v\.)?"
    r"[^,;\n|]*",
    # company names: "Valentine & Sons Ltd", "Stengel & Co.", "Neurdein Frères", "Römmler & Jonas GmbH"
    r"(\b[A-Z][\w'’-]*[ \t]+){0,2}(&|and|et|und)?\s*(?i:\b(sons?|co|cie|ltd|limited|inc|gmbh|ag|bros|brothers|"
    r"fils|fr[eè]res|s\.a|s\.p\.a|nachf)\b(?!-)\.?)([\s,]*(?i:\b(ltd|limited|inc|co)\b\.?))*",
]
_BOILER_RE = re.compile("|".join(f"(?:{p})" for p in _BOILERPLATE if "(?i:" not in p), re.IGNORECASE)
_CASED_RE = [re.compile(p) for p in _BOILERPLATE if "(?i:" in p]  # company names: capitals matter
_TOKEN_RE = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*|[.,;:!?()\[\]{}\"|/\n•·*]|\s[-–—]+\s", re.UNICODE)
_CONFUSION = {"0": "o", "1": "l", "5": "s", "|": "l", "$": "s", "8": "b"}


@dataclass
class Tok:
    raw: str  # as written (case kept)
    word: str  # folded
    capital: bool
    start: bool = True  # first part of a hyphenated compound ("Notre" in "Notre-Dame")
    end: bool = True  # last part: a name match must cover whole compounds


def strip_boilerplate(text: str) -> str:
    """Replace postcard formulas, credits, serial numbers and company names by a clause break."""
    for rx in _CASED_RE:
        text = rx.sub(" | ", text)
    return _BOILER_RE.sub(" | ", text)


def fix_confusions(raw: str, known=lambda w: False) -> str:
    """'L0NDON' -> 'LONDON', 'Br1dge' -> 'Bridge': digits read inside letter words."""
    letters = sum(c.isalpha() for c in raw)
    digits = sum(c.isdigit() for c in raw)
    if not digits or letters < 2 or letters < digits:
        return raw
    upper = sum(c.isupper() for c in raw) > sum(c.islower() for c in raw)
    variants = [raw.translate(str.maketrans(_CONFUSION))]
    if "1" in raw:
        variants.append(raw.translate(str.maketrans({**_CONFUSION, "1": "i"})))
    if upper:
        variants = [v.upper() for v in variants]
    for v in variants:
        if known(fold(v)):
            return v
    return variants[0] if upper else variants[-1]


def segments(text: str, known=lambda w: False) -> list[list[Tok]]:
    """Clauses (split on punctuation and boilerplate) as token lists; abbreviations keep their dot."""
    out: list[list[Tok]] = [[]]
    for m in _TOKEN_RE.finditer(text):
        t = m.group(0)
        if not (t[0].isalnum()):
            if t == "." and out[-1] and out[-1][-1].word in ABBREV:
                continue
            if out[-1]:
                out.append([])
            continue
        t = re.sub(r"['’][sS]$", "", fix_confusions(t, known))  # possessive: "Paul's"
        toks = [Tok(part, sub, part[:1].isupper(), False, False)
                for part in re.split(r"[-'’]", t) for sub in fold(part).split()]
        if toks:
            toks[0].start = toks[-1].end = True
            out[-1].extend(toks)
    return [s for s in out if s]


_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u1100-\u11ff]{2,}")


def _is_number(word: str) -> bool:
    return sum(c.isdigit() for c in word) * 2 >= len(word)


def _keep_word(word: str) -> bool:
    return len(word) > 2 and word not in STOPWORDS and not _is_number(word)


def _place(entry: GeoEntry, score: float, matched: str) -> dict:
    return {"name": entry.name, "country": entry.country, "lat": entry.lat, "lon": entry.lon,
            "score": round(score, 3), "kind": entry.kind, "matched": matched, "population": entry.population}


class GeoWordExtractor:
    """Reusable extractor; holds the gazetteer and an optional LandmarkLexicon."""

    def __init__(self, gazetteer: Gazetteer | None = None, lexicon: "LandmarkLexicon | None" = None,
                 fuzzy_min_len: int = 5, fuzzy_cutoff: float = 0.87, fuzzy_min_population: int = 100_000,
                 short_alt_min_population: int = 100_000):
        self.gaz = gazetteer or get_gazetteer()
        self.lexicon = lexicon
        self.fuzzy_min_len = fuzzy_min_len
        self.fuzzy_cutoff = fuzzy_cutoff
        self.fuzzy_min_population = fuzzy_min_population  # OCR slips are only trusted for big places
        self.short_alt_min_population = short_alt_min_population  # "Dame" is an alternate of Damme
        self._alternatives: dict[str, list[dict]] | None = None

    def known(self, word: str) -> bool:
        return bool(self.gaz.lookup(word)) or word in GENERIC or (self.lexicon is not None and word in self.lexicon)

    def _choose(self, cands: list[GeoEntry], context: set[str]) -> list[GeoEntry]:
        """Best candidate (a country named elsewhere in the text wins); a country brings its capital
        when the same word also names it ("MEXICO" on a card means Mexico City)."""
        if cands[0].kind == "country":
            best = cands[0]
            caps = [c for c in cands if c.kind == "city" and c.country == best.country
                    and c.name == (self.gaz.countries.get(best.country) or {}).get("capital")]
            return caps[:1] + [best]
        in_ctx = [c for c in cands if c.country in context]
        return [in_ctx[0] if in_ctx else cands[0]]

    def _match_cjk(self, text: str, words: list[str], places: list[dict], context: set[str]) -> None:
        """Place names inside runs of Han, kana or Hangul, which have no spaces between words: the
        longest gazetteer name at each position. Horizontal captions of the pre-1945 cards run right
        to left (朝鮮 printed as 鮮朝), so each run is also read reversed and the reading that
        matches more characters wins."""
        max_n = getattr(self.gaz, "max_cjk", 0)
        for run in _CJK_RUN.findall(text):
            best: list[tuple[str, list[GeoEntry]]] = []
            for candidate in (run, run[::-1]):
                found, i = [], 0
                while i < len(candidate) - 1:
                    for n in range(min(max_n, len(candidate) - i), 1, -1):
                        name = candidate[i : i + n]
                        cands = [c for c in self.gaz.lookup_han(fold(name)) if c.kind == "country" or n > 2
                                 or c.population >= self.short_alt_min_population]
                        if cands:
                            found.append((name, cands))
                            i += n
                            break
                    else:
                        i += 1
                if sum(len(n) for n, _ in found) > sum(len(n) for n, _ in best):
                    best = found
            for name, cands in best:
                for e in self._choose(cands, context):
                    places.append(_place(e, 1.0 if e.primary else 0.95, name))
                words.append(name)

    def _match_text(self, text: str, words: list[str], places: list[dict], context: set[str],
                    fuzzy: bool) -> None:
        text = fix_mojibake(text)
        if _CJK_RUN.search(text):
            self._match_cjk(text, words, places, context)
        needs_capital = any(c.isupper() for c in text)
        segs = segments(strip_boilerplate(text), self.known)
        lex_n = self.lexicon.max_words if self.lexicon else 0
        for seg in segs:
            i, in_landmark = 0, False
            while i < len(seg):
                t = seg[i]
                if in_landmark and not (t.capital or t.word in CONNECTORS or not needs_capital):
                    in_landmark = False  # "Piazza San Marco" ends at the next lower-case word
                step = self._match_at(seg, i, lex_n, needs_capital, in_landmark, fuzzy, words, places, context)
                if not step:
                    if _keep_word(t.word):
                        words.append(t.word)
                    step = 1
                    in_landmark = in_landmark or t.word in LANDMARK_HEADS
                i += step

    def _match_at(self, seg, i, lex_n, needs_capital, after_head, fuzzy, words, places, context) -> int:
        """Longest landmark / place name starting at token i; returns tokens consumed (0: none)."""
        first = seg[i]
        if first.word in STOPWORDS or first.word in CONNECTORS or _is_number(first.word) or not first.start:
            return 0
        if needs_capital and not first.capital:
            return 0
        for n in range(min(max(lex_n, self.gaz.max_words), len(seg) - i), 0, -1):
            last = seg[i + n - 1]
            if last.word in CONNECTORS or last.word in STOPWORDS or not last.end:
                continue
            phrase = " ".join(t.word for t in seg[i : i + n])
            if self.lexicon is not None and n <= lex_n:
                lm = self.lexicon.get(phrase)
                if lm is not None:
                    words.append(phrase)
                    places.append(lm.as_place(phrase))
                    return n
            if after_head or (n == 1 and (first.word in GENERIC or len(first.word) < 3)):
                continue
            cands = [c for c in self.gaz.lookup(phrase) if c.primary or len(phrase) > 4
                     or c.population >= self.short_alt_min_population]
            if n > 1 and all(t.word in GENERIC or t.word in CONNECTORS for t in seg[i : i + n]):
                # landmark-type words only: a town's own name (Little Rock, Great Falls), never an
                # alternate one ("Hotel de Ville" is a town hall, not the Paris quarter of that name)
                cands = [c for c in cands if c.primary]
            if n == 1 and phrase in AMBIGUOUS and not (fuzzy or first.raw.isupper()):
                cands = [c for c in cands if c.country in context]
            if cands:
                chosen = self._choose(cands, context)
                score = 1.0 if chosen[-1].primary else 0.95  # a capital found via its country shares its score
                for e in chosen:
                    places.append(_place(e, score, phrase))
                if self._alternatives is not None:  # the other places of that name, for places.resolve_place
                    self._alternatives.setdefault(phrase, [
                        _place(c, 1.0 if c.primary else 0.95, phrase) for c in cands[:8] if c not in chosen])
                words.append(phrase)
                return n
        w = first.word
        if (fuzzy and not after_head and first.end and len(w) >= self.fuzzy_min_len and w not in GENERIC
                and w.isalpha()):
            hit = self.gaz.fuzzy(w, self.fuzzy_cutoff)
            cands = [c for c in self.gaz.lookup(hit[0]) if c.population >= self.fuzzy_min_population] if hit else []
            if cands:
                for e in self._choose(cands, context):
                    places.append(_place(e, 0.9 * hit[1], w))
                words.append(w)
                return 1
        return 0

    def extract(self, ocr_text: str | None = None, description: str | None = None, *,
                fuzzy_description: bool = False) -> dict:
        """{'words': [...], 'places': [...]}. Fuzzy matching is for OCR slips; typed descriptions
        are matched exactly unless fuzzy_description (their near-misses are other words: "Mexicano")."""
        texts = [(t, f) for t, f in ((ocr_text, True), (description, fuzzy_description)) if t and t.strip()]
        all_words = {t.word for x, _ in texts for s in segments(strip_boilerplate(fix_mojibake(x))) for t in s}
        context = self.gaz.countries_in(all_words)
        words: list[str] = []
        places: list[dict] = []
        self._alternatives = {}
        try:
            for t, fz in texts:
                self._match_text(t, words, places, context, fz)
            alternatives, self._alternatives = self._alternatives, None
        finally:
            self._alternatives = None
        best: dict[tuple, dict] = {}
        for p in places:
            key = (p["name"], p["country"], p["kind"])
            if key not in best or p["score"] > best[key]["score"]:
                best[key] = p
        kind_order = {"landmark": 0, "city": 1, "country": 2}
        ranked = sorted(best.values(), key=lambda p: (-p["score"], kind_order.get(p["kind"], 3)))
        return {"words": list(dict.fromkeys(words)), "places": ranked, "alternatives": alternatives}


def extract_geowords(ocr_text: str | None = None, description: str | None = None, *,
                     lexicon: "LandmarkLexicon | None" = None, gazetteer: Gazetteer | None = None) -> dict:
    """Convenience wrapper: words and places from a card's OCR text and/or description."""
    return GeoWordExtractor(gazetteer, lexicon).extract(ocr_text, description)

