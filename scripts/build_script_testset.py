#!/usr/bin/env python3
"""Rebuild data/script_testset/ (captions in non-Latin scripts) from local git snapshots.

A small set of REAL photographs and scans whose printed text is in a
non-Latin script, each with a title in the same script taken from the
source's own metadata, to measure OCR word recall per script. What could be
found in public repositories is Cyrillic and Japanese (see SOURCES.md): phone
photos of Soviet and Belarusian postcards, envelopes and postal cards from a
private collection site (zubr-collection/zubryby.github.io), two printed
Russian menus of 1874 from a museum-based CollectionBuilder site
(AMitiukova/MenuCollectionBuilder), and hand-coloured Meiji-Taisho picture
postcards of Yokohama with printed Japanese captions from a university
library's website (shu-saginoya/ferris-library), and phone photographs of
printed Chinese leaflets and booklets of 1966-1967 whose printed heading is
the document's title, from a volunteer archive of Cultural Revolution
documents (banned-historical-archives/banned-historical-archives21). No
Korean source was found. A held-out Cyrillic set, added later and never used to
choose any setting, holds scans and photographs of the front covers of Russian
books on bookbinding (1893-2005) from a personal library catalogue
(VShilenkov/hobby_lit), titled by the catalogue.

The script reads the snapshots with ``git cat-file`` at pinned commits (no
network), takes each item's title from the source's metadata file, verifies
every source file against the sha256 recorded here, and writes
data/script_testset/MANIFEST.tsv. Downsized copies (longest side 1024 px,
JPEG quality 85, EXIF orientation applied, no metadata) are written to
data/script_testset/images/<id>.jpg only for items whose rights allow
redistribution (``committed=yes``; none at present); ``--all DIR`` also
renders the other items into DIR for local measurement.

    python scripts/build_script_testset.py            # rebuild, verify sources
    python scripts/build_script_testset.py --check    # rebuild in memory, compare
    python scripts/build_script_testset.py --all DIR  # also render every item into DIR

Needs only the standard library, Pillow and git. Snapshots are bare git
directories, by default /work/.mirror/<owner>+<name>/repo (``--mirror``).
Output is deterministic for a given Pillow/libjpeg build; files are written
atomically.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from vpr_assets.storage.atomic import atomic_write_bytes  # noqa: E402  (stdlib only)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_geo_testset import Git, downsize, sha  # noqa: E402  (one decoder, one git reader for every test set)

OUT_DIR = REPO_ROOT / "data" / "script_testset"
MANIFEST = OUT_DIR / "MANIFEST.tsv"
IMAGES = OUT_DIR / "images"
LONG_SIDE = 1024


@dataclass(frozen=True)
class Source:
    key: str
    repo: str
    commit: str
    license: str


SOURCES = {
    "zubr": Source(
        key="zubr",
        repo="zubr-collection/zubryby.github.io",
        commit="5e94f387530784401e49d90322606732ada98e06",
        license="site footer: CC BY-NC-ND 4.0, (c) ZUBRY.BY (Artur Basak); the photos show "
                "third-party postcards/envelopes (publishers' and artists' rights not covered)",
    ),
    "menus": Source(
        key="menus",
        repo="AMitiukova/MenuCollectionBuilder",
        commit="a3652068d891ac070f16a4ce57f0925655489e19",
        license="rights field: property of the Tsarskoe Selo State Museum-Reserve, personal "
                "non-commercial use only without written permission (repo LICENSE: MIT for the "
                "CollectionBuilder code only)",
    ),
    "ferris": Source(
        key="ferris",
        repo="shu-saginoya/ferris-library",
        commit="01af523cef72b2d5fb94bf29ce1106f93c759bff",
        license="none stated for this collection; no LICENSE file; sibling collections of the same "
                "site say 無断転載や無断使用を禁じます (no reproduction or use without permission); scans "
                "carry the stamp フェリス女学院大学附属図書館蔵 (Ferris University Library); the postcards "
                "themselves (Meiji-Taisho) are public domain by age",
    ),
    "bha21": Source(
        key="bha21",
        repo="banned-historical-archives/banned-historical-archives21",
        commit="6ff12ae10f50341068cce5ca761501c0518b0388",
        license="none stated: no LICENSE file in this repository or in the site repository "
                "banned-historical-archives/banned-historical-archives.github.io; contributors' "
                "phone photographs of printed leaflets and booklets of 1966-1967 (works of "
                "organisations and editorial groups)",
    ),
    "hobbylit": Source(
        key="hobbylit",
        repo="VShilenkov/hobby_lit",
        commit="294aeb2fb599920d08b8a4eb6ca9f336690e8299",
        license="none stated: no LICENSE file, README has the title only; cover scans and photos "
                "collected from library and bookshop sites (arch.rgdb.ru, labirint.ru, antikclub.ru "
                "watermark on one); the covers are publishers' works of 1893-2005 (pre-1930 ones "
                "public domain by age)",
    ),
}

# Where each source keeps its titles. zubr: JS modules src/data/<file>.js with
# `things: [{ image: '<name>', year: ..., title: '<title>' ...}]`, pictures in
# assets/pics/<pictureFolder>/<name>.jpg. menus: a CollectionBuilder CSV.
# ferris: the Nuxt site's JSON list assets/json/digital-collection/
# collection07.json, `[{"group01": [{"src": "/images/...jpg", "caption": ...}],
# ...}]`; `src` is served from static/, so the file is static/<src>.
FERRIS_JSON = "assets/json/digital-collection/collection07.json"
# bha21: the pictures are on the branch `main` (<uuid>/<page>.jpg); each
# document's metadata, a TypeScript module <uuid>.ts with
# `export default { entity: { id, name: '<title>', type: 'img', files: [...] },
# parser_option: ... }`, is on the branch `config`, pinned here.
BHA21_META_COMMIT = "2367f414c92ed8c0ed12ea3ca1e27d75f6ef737f"
ZUBR_FOLDERS = {"postcards": "postcards", "envelopes": "envelopes", "postal-cards": "postal-cards"}
# hobbylit: a Sphinx catalogue, catalogue/craft/bookbinding.rst, one
# `.. athenaeum:book:: <original title>` block per book with an optional
# `:title_localized: <Russian title>` and one `:front: ../../docs/static/imgs/...`
# line per issue; the picture is docs/static/imgs/craft/bookbinding/<file>. The
# title taken is title_localized where the block has one (translations), else
# the directive's title.
HOBBYLIT_RST = "catalogue/craft/bookbinding.rst"
HOBBYLIT_IMGS = "docs/static/imgs/craft/bookbinding/"

# (id, script, source, data file, item key, note); the sha256 of each original
# file is pinned in MANIFEST.tsv and checked on every build.
# The note records the printed text as seen on the image (read by eye from the
# source photo; partly hidden text in brackets) and how it relates to the
# title. Titles are Russian as the source gives them; much of the printed
# text is Belarusian or Ukrainian (same script, other spelling).
ITEMS = [
    # --- zubr: postcards (src/data/postcards.js)
    ("zubr-postcards-belarus-1981", "cyrillic", "zubr", "postcards", "belarus-1981",
     "printed (Belarusian, folder cover): 'Белавежская пушча'; title Russian"),
    ("zubr-postcards-belarus-2005", "cyrillic", "zubr", "postcards", "belarus-2005",
     "printed (Belarusian): 'Камянец'; title Russian 'Каменец'"),
    ("zubr-postcards-belarus-2009-3", "cyrillic", "zubr", "postcards", "belarus-2009-3",
     "printed (Belarusian, two cards): 'Белавежская пушча'"),
    ("zubr-postcards-belarus-2009-4", "cyrillic", "zubr", "postcards", "belarus-2009-4",
     "printed (Belarusian): 'Белавежская пушча', 'БЕЛПОШТА'"),
    ("zubr-postcards-belarus-2010", "cyrillic", "zubr", "postcards", "belarus-2010",
     "printed (Belarusian): 'БЕЛАВЕЖСКАЯ ПУШЧА'"),
    ("zubr-postcards-belarus-2010-2", "cyrillic", "zubr", "postcards", "belarus-2010-2",
     "printed (Belarusian, script lettering): 'З Новым годам!' = title"),
    ("zubr-postcards-belarus-2011", "cyrillic", "zubr", "postcards", "belarus-2011",
     "printed (Russian, vertical): 'Национальный парк Припятский'"),
    ("zubr-postcards-belarus-2018", "cyrillic", "zubr", "postcards", "belarus-2018",
     "printed (Russian, vertical, on the card behind): 'Животный мир Беларуси'"),
    ("zubr-postcards-belarus-2018-1", "cyrillic", "zubr", "postcards", "belarus-2018-1",
     "printed (vertical, card behind, partly hidden): '[Белове]жская [пуща] Звери'"),
    ("zubr-postcards-ussr-1960", "cyrillic", "zubr", "postcards", "ussr-1960",
     "printed (card cover at the edge, partly hidden): 'Из м[ира] живот[ных]'"),
    ("zubr-postcards-ussr-1973", "cyrillic", "zubr", "postcards", "ussr-1973",
     "printed (decorative lettering): 'С НОВЫМ ГОДОМ!' = title"),
    ("zubr-postcards-ussr-1976", "cyrillic", "zubr", "postcards", "ussr-1976",
     "printed (Ukrainian, set cover, partly hidden): 'Київськ[ий] зоопа[рк]'; title Russian"),
    # --- zubr: envelopes (src/data/envelopes.js)
    ("zubr-envelopes-belarus-1994", "cyrillic", "zubr", "envelopes", "belarus-1994",
     "printed (Belarusian, small): '[НА]ЦЫЯНАЛЬНЫ ПАРК БЕЛАВЕЖСКАЯ ПУШЧА'; plus form lines"),
    ("zubr-envelopes-belarus-2002", "cyrillic", "zubr", "envelopes", "belarus-2002",
     "printed (Belarusian): '75 ГРОДЗЕНСКАМУ ЗААПАРКУ'; plus address-form lines"),
    ("zubr-envelopes-belarus-2003", "cyrillic", "zubr", "envelopes", "belarus-2003",
     "printed (Belarusian, small caption): 'Зіма ў Белавежскай пушчы.'"),
    ("zubr-envelopes-belarus-2005-1", "cyrillic", "zubr", "envelopes", "belarus-2005-1",
     "printed (Belarusian): 'г. КАМЯНЕЦ', '[Дзень] беларускага пісьменства'"),
    ("zubr-envelopes-belarus-2009-1", "cyrillic", "zubr", "envelopes", "belarus-2009-1",
     "printed (Belarusian): 'ДПУ \"Нацыянальны парк \"Белавежская пушча\"', "
     "'600 гадоў запаведнасці Белавежскай пушчы'"),
    ("zubr-envelopes-belarus-2009-2", "cyrillic", "zubr", "envelopes", "belarus-2009-2",
     "printed (Belarusian): '600 гадоў запаведнасці Белавежскай пушчы'"),
    ("zubr-envelopes-belarus-2012", "cyrillic", "zubr", "envelopes", "belarus-2012",
     "printed (Belarusian, small, and a Chinese line): 20th anniversary of Belarus-China "
     "diplomatic relations; title Russian"),
    ("zubr-envelopes-belarus-2017", "cyrillic", "zubr", "envelopes", "belarus-2017",
     "printed (Belarusian): '25 гадоў устанаўлення дыпламатычных адносін паміж Рэспублікай "
     "Беларусь і Рэспублікай Польшча'; title Russian"),
    ("zubr-envelopes-belarus-2018", "cyrillic", "zubr", "envelopes", "belarus-2018",
     "printed (Belarusian, small, two envelopes): 25th anniversary of Belarus-Kyrgyzstan "
     "diplomatic relations; title Russian"),
    ("zubr-envelopes-belarus-2019", "cyrillic", "zubr", "envelopes", "belarus-2019",
     "printed (Belarusian): 'ГІСТОРЫЯ ГРАШОВЫХ ЗНАКАЎ БЕЛАРУСІ'; title Russian"),
    ("zubr-envelopes-ussr-1972", "cyrillic", "zubr", "envelopes", "ussr-1972",
     "printed (Russian, small): 'Белорусская ССР. Музей „Беловежская пуща“'; 'Куда', 'Кому'"),
    ("zubr-envelopes-ussr-1980", "cyrillic", "zubr", "envelopes", "ussr-1980",
     "printed (Russian): 'Игры XXII Олимпиады·Москва-80', 'ФУТБОЛ'; 'Куда', 'Кому'"),
    ("zubr-envelopes-ussr-1981", "cyrillic", "zubr", "envelopes", "ussr-1981",
     "printed (Russian, red, small): 'VII съезд Всероссийского ордена трудового красного "
     "знамени общества охраны природы'"),
    ("zubr-envelopes-ussr-1981-2", "cyrillic", "zubr", "envelopes", "ussr-1981-2",
     "printed (Russian and Belarusian, small): 'Брестская область, Каменецкий район. Музей "
     "природы „Беловежская пуща“'"),
    # --- zubr: postal cards (src/data/postal-cards.js)
    ("zubr-postal-cards-belarus-2005", "cyrillic", "zubr", "postal-cards", "belarus-2005",
     "printed (Belarusian): 'Белавежскі Зубр', 'ПАШТОЎКА'; title Russian"),
    ("zubr-postal-cards-belarus-2008", "cyrillic", "zubr", "postal-cards", "belarus-2008",
     "printed (Belarusian): 'ПАШТОЎКА'; cancel 'Песня пра зубра'; title Russian"),
    ("zubr-postal-cards-belarus-2009", "cyrillic", "zubr", "postal-cards", "belarus-2009",
     "printed (Belarusian, script lettering): '600 гадоў запаведнасці Белавежскай пушчы'"),
    ("zubr-postal-cards-belarus-2020", "cyrillic", "zubr", "postal-cards", "belarus-2020",
     "printed (Belarusian): '2018-2020 Пад знакам Года малой радзімы ў Беларусі', 'ПАШТОЎКА'"),
    ("zubr-postal-cards-ussr-1974", "cyrillic", "zubr", "postal-cards", "ussr-1974",
     "printed (Russian, small): 'Кавказский заповедник Хребет Аишхо. Гора Безымянка', 'АВИА', "
     "'Куда', 'Кому'; title only partly printed"),
    # --- menus: _data/menu.csv
    ("menus-coll001", "cyrillic", "menus", "_data/menu.csv", "coll001",
     "printed (pre-1918 orthography, decorative): 'ОБѢДЪ ЮНКЕРОВЪ Л. Гв. Коннаго Полка 24 Марта "
     "1874 г.' = title (title writes Е for Ѣ); the dishes below are French"),
    ("menus-coll007", "cyrillic", "menus", "_data/menu.csv", "coll007",
     "printed (pre-1918 orthography): 'ОБѢДЪ 14 МАЯ 1874 ГОДА.' and a Russian bill of fare; "
     "title is the curator's description 'Меню обеда 14 мая 1874 года ...'"),
    # --- ferris: Yokohama hand-coloured picture postcards, Meiji-Taisho
    # (assets/json/digital-collection/collection07.json). Most captions are
    # printed right to left, which the notes say; every scan also carries the
    # library's red stamp 'フェリス女学院大学附属図書館蔵' (overlay, not part of the card).
    ("ferris-yokohama-group01-001", "japanese", "ferris", FERRIS_JSON, "group01_001",
     "printed (right to left) '横濱本町通リ' = title; 'Main Street, Yokohama.'"),
    ("ferris-yokohama-group01-012", "japanese", "ferris", FERRIS_JSON, "group01_012",
     "printed (right to left) '横濱伊勢佐木町の賑ひ' = title; 'Theatre Street at "
     "YOKOHAMA.'; shop signs"),
    ("ferris-yokohama-group01-026", "japanese", "ferris", FERRIS_JSON, "group01_026",
     "printed (right to left) '横濱山下町ヨリ元町藥師オ望ム' = title; 'YAKUSHI SHRINE AT "
     "MOTOMACHI, YOKOHAMA.'"),
    ("ferris-yokohama-group01-030", "japanese", "ferris", FERRIS_JSON, "group01_030",
     "printed (left to right) '横濱佛國領事舘並ニ谷戸橋' (title writes 館); 'Entrance of "
     "Yokohama Canal' ... 'French Consulate.'"),
    ("ferris-yokohama-group01-052", "japanese", "ferris", FERRIS_JSON, "group01_052",
     "printed (right to left) '横濱海岸通リオリエンタルホテル' = title; 'Oriental Hotel, "
     "Yokohama.'"),
    ("ferris-yokohama-group01-062", "japanese", "ferris", FERRIS_JSON, "group01_062",
     "printed (right to left), small: '(横濱名所) 巨船常に輻輳せる横濱港の岸壁'; 'THE QUAY OF "
     "YOKOHAMA HARBOUR GATHERING MANY GREAT SHIPS, YOKOHAMA.'"),
    ("ferris-yokohama-group01-074", "japanese", "ferris", FERRIS_JSON, "group01_074",
     "printed (right to left) '横濱港四號岸壁' (title has 海壁 for 岸壁); 'The Pier of "
     "Yokohama'"),
    ("ferris-yokohama-group01-083", "japanese", "ferris", FERRIS_JSON, "group01_083",
     "printed (right to left) '横濱獨逸病院' = title; '(254) GERMANY HOSPITAL AT "
     "YOKOHAMA.'; handwritten English message on the front"),
    ("ferris-yokohama-group01-084", "japanese", "ferris", FERRIS_JSON, "group01_084",
     "printed (right to left), small: '横濱南京街通リ' = title; 'CHINE STREET "
     "YOKOHAMA'; Chinese shop signs"),
    ("ferris-yokohama-group01-089", "japanese", "ferris", FERRIS_JSON, "group01_089",
     "printed (right to left) '横濱西ノ橋川岸雪ノ景' (title has 海岸 for 川岸); 'Snow Scene "
     "near Nishino-hashi, Yokohama.'"),
    ("ferris-yokohama-group01-095", "japanese", "ferris", FERRIS_JSON, "group01_095",
     "printed (right to left) '横濱港橋及市役所' = title; 'Minato bridge & City "
     "Office, Yokohama'"),
    ("ferris-yokohama-group01-097", "japanese", "ferris", FERRIS_JSON, "group01_097",
     "printed (right to left) '横濱石川玉泉寺' = title; English caption; '(Y108)'"),
    ("ferris-yokohama-group01-102", "japanese", "ferris", FERRIS_JSON, "group01_102",
     "printed (right to left) '横濱掃部山井伊公銅像' = title; 'Monument of Iiko, "
     "Yokohama'"),
    ("ferris-yokohama-group01-106", "japanese", "ferris", FERRIS_JSON, "group01_106",
     "printed (right to left), small, top: '(横濱名所) 林泉の美賞すべき野毛山公園'; 'THE "
     "SCENERY OF NOGEYAMA PARK, YOKOHAMA.'"),
    ("ferris-yokohama-group01-125", "japanese", "ferris", FERRIS_JSON, "group01_125",
     "printed (right to left), small: '(横濱名所) 本牧八聖殿の美観'; 'THE HASSEI-DEN OR 8 "
     "SAINTS TEMPLE AT HONMOKU, YOKOHAMA.'"),
    ("ferris-yokohama-group02-1004", "japanese", "ferris", FERRIS_JSON, "group02_1004",
     "printed (right to left) '横濱税關' = title; 'Custom House, Yokohama'"),
    ("ferris-yokohama-group02-1010", "japanese", "ferris", FERRIS_JSON, "group02_1010",
     "printed (right to left) '横濱大江橋ヨリ櫻木町驛ヲ望ム' = title; 'Railway Sakuragi-cho "
     "Station, Yokohama.'"),
    ("ferris-yokohama-group02-1069", "japanese", "ferris", FERRIS_JSON, "group02_1069",
     "printed (right to left), small, top: '(横濱名所) 最新の設計に成る横濱驛'; 'THE RAILWAY "
     "STATION, YOKOHAMA.'"),
    ("ferris-yokohama-group02-1088", "japanese", "ferris", FERRIS_JSON, "group02_1088",
     "portrait card; printed (right to left) '横濱正金銀行' = title; '(241) YOKOHAMA "
     "SPECIE BANK, YOKOHAMA JAPAN.'"),
    ("ferris-yokohama-group02-1094", "japanese", "ferris", FERRIS_JSON, "group02_1094",
     "printed (right to left) '横濱南京町' = title; 'TOWN CHINA OF YOKOHAMA.'; "
     "Chinese and English shop signs"),
    ("ferris-yokohama-group02-1128", "japanese", "ferris", FERRIS_JSON, "group02_1128",
     "printed (right to left) '横濱山手英國海軍病院' = title; 'British Naval Hospital, "
     "Bluff Yokohama.'"),
    ("ferris-yokohama-group02-1158", "japanese", "ferris", FERRIS_JSON, "group02_1158",
     "printed (right to left) '洲崎の晴嵐 照天姫の松葉いぶし島' = title; 'View of Kanazawa'; "
     "two lines of fine print (publisher) at the left"),
    ("ferris-yokohama-group02-1160", "japanese", "ferris", FERRIS_JSON, "group02_1160",
     "printed (right to left) '武州金澤全景' = title; 'Whole view of Kanazawa, "
     "Bushu.'"),
    ("ferris-yokohama-group02-1180", "japanese", "ferris", FERRIS_JSON, "group02_1180",
     "printed (right to left) '川崎大師本堂' = title; 'Temple of Daishi, Kawasaki.'"),
    ("ferris-yokohama-group03-2013", "japanese", "ferris", FERRIS_JSON, "group03_2013",
     "printed (right to left) '横濱築港入口' = title; 'The Breakwater, Yokohama.'; a "
     "handwritten Japanese line lower left"),
    ("ferris-yokohama-group03-2065", "japanese", "ferris", FERRIS_JSON, "group03_2065",
     "printed (right to left) '横濱公園の噴水' = title; 'YOKOHAMA PARK.'"),
    ("ferris-yokohama-group03-2073", "japanese", "ferris", FERRIS_JSON, "group03_2073",
     "printed (right to left) '改築の横濱公園' = title; '(Y422) The Park at "
     "Yokohama.'"),
    ("ferris-yokohama-group03-2085", "japanese", "ferris", FERRIS_JSON, "group03_2085",
     "printed (right to left) '横濱野毛山招魂社' = title; 'Cherry Blossom at Noge Hill "
     "Yokohama.'"),
    # --- bha21: printed Chinese leaflets and booklets of 1966-1967, phone photos of
    # the first page (<uuid>/1.jpg on `main`); title = entity.name of <uuid>.ts on
    # `config` (BHA21_META_COMMIT). Simplified titles; the print often uses
    # traditional forms, which the notes give. Every page also has dense body text.
    ("bha21-0859a0b0", "chinese", "bha21", "0859a0b0-aaa5-4e50-a7af-fb5e6c39e3ae.ts", "0859a0b0-aaa5-4e50-a7af-fb5e6c39e3ae",
     "heading '陶鑄同志的講話' = title in traditional forms (鑄, 講話); dense body text below"),
    ("bha21-0cca0258", "chinese", "bha21", "0cca0258-1a9d-4625-8a60-d7ac9fed12f1.ts", "0cca0258-1a9d-4625-8a60-d7ac9fed12f1",
     "heading '周恩来总理給西安工业学院造反队二十四位同学的电話' (title leaves out 給; print has 話); dense body text"),
    ("bha21-28b46a95", "chinese", "bha21", "28b46a95-8ce9-4e2c-84a2-3082268e4268.ts", "28b46a95-8ce9-4e2c-84a2-3082268e4268",
     "heading '陈毅副总理的講話' (= title, 講話 traditional), at the right '八月卅日', below '（記录不全，仅作参考）'"),
    ("bha21-375ddbec", "chinese", "bha21", "375ddbec-9bac-445e-82f8-39b22b7ea999.ts", "375ddbec-9bac-445e-82f8-39b22b7ea999",
     "red print, small line '在接見外地来京革命师生大会上', large '林彪同志的讲话' = title (見 traditional); red body text"),
    ("bha21-3dc45a6e", "chinese", "bha21", "3dc45a6e-e73a-4a42-ba68-bcec86e40b98.ts", "3dc45a6e-e73a-4a42-ba68-bcec86e40b98",
     "heading '紅卫兵要沿着正确的方向胜利地前进！' = title (紅 traditional); small dense body text"),
    ("bha21-41dd3e23", "chinese", "bha21", "41dd3e23-4eed-4be8-bafa-b589b14b7ad0.ts", "41dd3e23-4eed-4be8-bafa-b589b14b7ad0",
     "green paper, two-line heading '在社会主义的中国' / '《怀疑一切》决不是无产阶級的战斗口号' = title (plus 《》, 級); boxed line '毛主席没有叫咱怀疑一切'"),
    ("bha21-49c8ec91", "chinese", "bha21", "49c8ec91-7587-45b2-b837-4df9b86e9f28.ts", "49c8ec91-7587-45b2-b837-4df9b86e9f28",
     "red print: a quotation block at the top, then large '联合紧急通令' = title"),
    ("bha21-4e24d1d6", "chinese", "bha21", "4e24d1d6-8c5c-4de5-9433-2eeeae1d4c14.ts", "4e24d1d6-8c5c-4de5-9433-2eeeae1d4c14",
     "two-line heading '党的阶级路线是什么' / '訪中共中央接待站' = title without the dash (訪 traditional)"),
    ("bha21-567180a4", "chinese", "bha21", "567180a4-4f3c-4676-9b94-c76d8ef62fe6.ts", "567180a4-4f3c-4676-9b94-c76d8ef62fe6",
     "heading '張春桥、关鋒同志的講話' = title in partly traditional forms; then '十月七日接見福建省部分革命同学（中南海）', '張春桥同志的講話'"),
    ("bha21-56b509b6", "chinese", "bha21", "56b509b6-59eb-4ca0-9739-7807925d0ecc.ts", "56b509b6-59eb-4ca0-9739-7807925d0ecc",
     "heading '張春桥同志接見我們时的談話摘录' = title in partly traditional forms"),
    ("bha21-632f38b6", "chinese", "bha21", "632f38b6-f159-42bc-ab83-6a5f4175a543.ts", "632f38b6-f159-42bc-ab83-6a5f4175a543",
     "top '最高指示' and a quotation, then large '“狂人”日記' = title (記 traditional)"),
    ("bha21-70961adb", "chinese", "bha21", "70961adb-0844-4219-aba4-c4508fb98687.ts", "70961adb-0844-4219-aba4-c4508fb98687",
     "red print: '照办。毛泽东' at the top, then '中共中央、国务院、中央軍委、中央文革' and large '布告' = title (軍 traditional); creased sheet"),
    ("bha21-76f69fed", "chinese", "bha21", "76f69fed-bb8d-4529-9f7d-f25288131f8f.ts", "76f69fed-bb8d-4529-9f7d-f25288131f8f",
     "heading '中央文化革命小組成員' = title (組, 員 traditional), then a list of names and posts"),
    ("bha21-7f5af46c", "chinese", "bha21", "7f5af46c-8087-4181-accc-2a57462ad3e3.ts", "7f5af46c-8087-4181-accc-2a57462ad3e3",
     "heading '張平化同志八月二十五日講話' = title (張, 講話 traditional), subtitle '（接見湖南赴京及北京一部分革命师生）'"),
    ("bha21-84ee66f6", "chinese", "bha21", "84ee66f6-c115-4aca-ae3e-16be74c87158.ts", "84ee66f6-c115-4aca-ae3e-16be74c87158",
     "three-line heading '六六年十月七日王任重同志在北京飯店 / 接見华中师范学院物理系6201班七位 / 工农同学的講話' = title in partly traditional forms, plus '＜記录整理的＞'"),
    ("bha21-8aefd4e0", "chinese", "bha21", "8aefd4e0-51f0-4f5f-959f-4d78da1e6d1a.ts", "8aefd4e0-51f0-4f5f-959f-4d78da1e6d1a",
     "heading '揭穿資本家代理人刘少奇的反动面目' / '——刘少奇在东亚毛紡厂罪行的调查' = title (資, 紡 traditional); line of authors below"),
    ("bha21-8de94f14", "chinese", "bha21", "8de94f14-f516-4a62-8114-b58ba82333af.ts", "8de94f14-f516-4a62-8114-b58ba82333af",
     "heading '毛主席、林彪、陈伯达同志关于反对右傾机会主义的論述' = title (傾, 論 traditional)"),
    ("bha21-90026db3", "chinese", "bha21", "90026db3-c08e-4178-8ba8-9dd862963597.ts", "90026db3-c08e-4178-8ba8-9dd862963597",
     "torn sheet: '最高指示' and a quotation between dashed rules, then heading '給各級造反組織的几項建議' = title in traditional forms"),
    ("bha21-91ab8b47", "chinese", "bha21", "91ab8b47-a487-4e92-8cee-58a1d4e54f1c.ts", "91ab8b47-a487-4e92-8cee-58a1d4e54f1c",
     "red print: '最高指示', a quotation, then large '第一号紧急通令' = title; text of the reverse shows through"),
    ("bha21-9341c6f0", "chinese", "bha21", "9341c6f0-cf38-42b6-8acc-b44be8bed812.ts", "9341c6f0-cf38-42b6-8acc-b44be8bed812",
     "red print: small line '在接見外地来京革命师生大会上', large '周恩来同志的讲话' = title (見 traditional); torn left edge"),
    ("bha21-b310162f", "chinese", "bha21", "b310162f-3f09-4798-b6f5-94cfbf9a0269.ts", "b310162f-3f09-4798-b6f5-94cfbf9a0269",
     "heading '陈毅副总理的講話' over a wavy rule = title (講話 traditional); body '亲爱的紅卫兵同志們：'"),
    ("bha21-b62dc453", "chinese", "bha21", "b62dc453-2d7d-44b0-8802-b8682950192a.ts", "b62dc453-2d7d-44b0-8802-b8682950192a",
     "two-line heading '一九六六年九月十日在外出串联誓师大会上' / '周恩来总理的講話' = title (講話 traditional)"),
    ("bha21-c0600345", "chinese", "bha21", "c0600345-0734-45e8-9630-874b72da7b99.ts", "c0600345-0734-45e8-9630-874b72da7b99",
     "cover, large '为捍卫毛主席的无产阶級' / '革命路綫而奋战終生'; the title has '二奋斗终身' where the print has '而奋战終生'; the contents list repeats it as item 六, '东方紅报評論員' at the foot"),
    ("bha21-c1373104", "chinese", "bha21", "c1373104-54ab-4b13-b21b-2b9927821011.ts", "c1373104-54ab-4b13-b21b-2b9927821011",
     "heading '訪問“紅旗”杂志編輯部紀要' = title in traditional forms, then '《一九六六年十月十七日》'"),
    ("bha21-c2156ce7", "chinese", "bha21", "c2156ce7-375a-4525-a1d8-0b04436733e2.ts", "c2156ce7-375a-4525-a1d8-0b04436733e2",
     "red print, large '告全國革命公民书' = title (國 traditional)"),
    ("bha21-d093d7ac", "chinese", "bha21", "d093d7ac-4767-4e1b-be3e-d444380c98ef.ts", "d093d7ac-4767-4e1b-be3e-d444380c98ef",
     "heading '給毛主席的致敬信' = title (給 traditional); blurred, smudged body text"),
    ("bha21-d0e5f3df", "chinese", "bha21", "d0e5f3df-6528-4adb-9aad-9d68c9556eca.ts", "d0e5f3df-6528-4adb-9aad-9d68c9556eca",
     "heading '（三）砸烂刘邓反革命专政，跟着毛主席干一辈子革命！' / '——陈里宁在清华大学井冈山兵团红教工召开的' / '“控诉刘邓反革命专政大会”上的发言' = title plus '（三）', then '（一九六七年一月三十日）'"),
    ("bha21-d106aabf", "chinese", "bha21", "d106aabf-7562-4574-a8bb-dfabdf5e4a64.ts", "d106aabf-7562-4574-a8bb-dfabdf5e4a64",
     "two-line heading '叶劍英同志' / '在接見联络总站工作人員的講話' = title in partly traditional forms"),
    ("bha21-fc846088", "chinese", "bha21", "fc846088-9621-4371-818e-373be48942e3.ts", "fc846088-9621-4371-818e-373be48942e3",
     "green paper, heading '再論紅卫兵要沿着正确的方向胜利地前进！' / '——“怀疑一切万岁”是反动的' = title (論, 紅 traditional)"),
    # --- hobbylit: HELD-OUT Cyrillic set (added 2026-12-02, never used to choose any
    # setting). Front covers of Russian books on bookbinding, scanned or photographed
    # flat (catalogue/craft/bookbinding.rst, `:front:` of the Russian issue). Left out:
    # 'Переплетчик' (Верига 2000; its cover prints 'Переплетное дело и реставрация
    # книг', not the title) and 'Как переплетать книги' (1930; the PNG is absent
    # from the snapshot).
    ("hobbylit-bakhtiarov-1893", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Бахтиаров.А.А.-Как_делают_бумагу_и_как_печатают_книги(1893.I).[RUS].png",
     "printed (pre-1918 orthography) 'КАКЪ ДѢЛАЮТЪ БУМАГУ и КАКЪ ПЕЧАТАЮТЪ КНИГИ.', "
     "'А. Бахтiарова.', 'С.-ПЕТЕРБУРГЪ' = title in old spelling; handwritten library marks at the top"),
    ("hobbylit-buravlev-1941", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Буравлев.В._.-Как_переплетать(1941.I).[RUS].png",
     "printed 'КАК ПЕРЕПЛЕТАТЬ' = title, 'В. Буравлев', 'ДЕТИЗДАТ ЦК ВЛКСМ 1941', 'Цена 50 коп.' "
     "(vertical); a paragraph of small text; handwritten 'Б912'; landscape cover"),
    ("hobbylit-cammareri-2005", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Michel.Cammareri-La_Reliure(2005.I).[RUS].jpg",
     "printed 'ПЕРЕПЛЕТ:' = title, script 'шаг за шагом' (the catalogue's subtitle_localized), "
     "small '(по материалам Мишеля Каммарери)'; photo cover, small image (280x400)"),
    ("hobbylit-franke-bauer-1913", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Alfred.Franke,Christian.Bauer-Handbuch_der_Buchbinderei(1913.VIII).[RUS].jpg",
     "printed (pre-1918 orthography) 'ПЕРЕПЛЕТНОЕ РЕМЕСЛО.' = title_localized, 'Полный курсъ "
     "переплетнаго ремесла.', 'Э. БАУЕРЪ и А. ФРАНКЕ', 'С.-ПЕТЕРБУРГЪ'; title page, small scan "
     "(200x316), the paragraphs of fine print barely legible at this size"),
    ("hobbylit-gorbov-2005", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Горбов.А.М.-Реставрация_книг_в_домашних_условиях(2005.I).[RUS].jpeg",
     "printed 'СЕКРЕТЫ МАСТЕРА', 'ИЗГОТОВЛЕНИЕ ПЕРЕПЛЕТОВ И РЕСТАВРАЦИЯ КНИГ', 'АСТ•СТАЛКЕР'; the "
     "title 'Реставрация книг в домашних условиях' is only partly printed; small image (200x305)"),
    ("hobbylit-iroshnikov-1989", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Ирошников.Ю.П.,Ирошникова.И.Г.-Переплет_и_реставрация_книг(1989.I).[RUS].jpg",
     "printed 'СДЕЛАЙ САМ' (vertical 'СДЕЛАЙ'), 'ПЕРЕПЛЕТ И РЕСТАВРАЦИЯ КНИГ' = title, "
     "'Ю.П. Ирошников И.Г. Ирошникова'; overlay watermark 'Collectors, unite! antikclub.ru'; "
     "small image (250x352)"),
    ("hobbylit-iroshnikov-1991", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Ирошников.Ю.П.,Ирошникова.И.Г.-Переплет_и_реставрация_книг_в_домашних_условиях(1991.I).[RUS].jpg",
     "printed 'Ю.П.Ирошников, И.Г.Ирошникова', 'ПЕРЕПЛЁТ И РЕСТАВРАЦИЯ КНИГ В ДОМАШНИХ УСЛОВИЯХ' "
     "= title (print has Ё)"),
    ("hobbylit-johnson-1989", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Arthur.W.Johnson-The_Practical_Guide_to_Craft_Bookbinding(1989.I).[RUS].jpeg",
     "printed 'А.Джонсон', 'Практическое руководство по переплетному делу' = title_localized; "
     "small red labels 'ГОЛОВКА', 'СВОБОДНЫЙ ЛИСТ ФОРЗАЦА', 'КОРЕШОК', 'ШАРНИР', 'ПЕРЕДНЯЯ "
     "СТОРОНКА ПЕРЕПЛЕТА', 'ХВОСТИК' (some vertical or slanted)"),
    ("hobbylit-korshun-1952", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Коршун.И.А.,Толмачева.Е.Е.-Как_научиться_переплетать(1952.I).[RUS].jpg",
     "printed 'КАК НАУЧИТЬСЯ ПЕРЕПЛЕТАТЬ' = title, 'И. КОРШУН И Е. ТОЛМАЧЕВА', 'В ПОМОЩЬ "
     "САМОДЕЯТЕЛЬНОСТИ ПИОНЕРОВ и ШКОЛЬНИКОВ' (the series), 'ДЕТГИЗ · 1952'"),
    ("hobbylit-mazok-1980", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Мазок.Н.Н.-Переплести_книгу_может_каждый(1980.III).[RUS].jpg",
     "printed 'ПЕРЕПЛЕСТИ КНИГУ МОЖЕТ КАЖДЫЙ' = title, 'Н. Н. Мазок'; wide white margins"),
    ("hobbylit-mitchell-2007", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "John.R.Mitchell-A_Craftsman’s_Guide_to_Edge_Decoration(2007.I).[RUS].png",
     "printed 'Практическое руководство по отделке обреза книги' = title_localized, 'Автор Дж. "
     "Митчел', 'The Standing Press'"),
    ("hobbylit-pavlov-1993", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Павлов.И.П.-Ручной_переплет(1993.I).[RUS].jpeg",
     "printed 'РУЧНОЙ ПЕРЕПЛЕТ' = title, 'И.П.Павлов'; engraving below"),
    ("hobbylit-simonov-1897", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Симонов.Л.Н.-Переплетное_мастерство(1897.I).[RUS].jpg",
     "printed (pre-1918 orthography) 'ПЕРЕПЛЕТНОЕ МАСТЕРСТВО' = title, 'ИСКУССТВО УКРАШЕНІЯ "
     "ПЕРЕПЛЕТА.', 'Д-ра Л. Н. СИМОНОВА', 'С.-ПЕТЕРБУРГЪ'; curved banner 'БИБЛIОТЕКА "
     "ПРАКТИЧЕСКИХЪ СВѢДѢНIЙ'; title page, small type"),
    ("hobbylit-stakhurskii-1956", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Стахурский.А.Е.-Учись_переплетать(1956.I).[RUS].png",
     "printed (script lettering) 'Учись переплетать' = title and 'Для умелых рук' (the series); "
     "'ЦЕНТРАЛЬНАЯ СТАНЦИЯ ЮНЫХ ТЕХНИКОВ имени Н. М. ШВЕРНИКА'; white on red"),
    ("hobbylit-zdorikov-1955", "cyrillic", "hobbylit", HOBBYLIT_RST,
     "Здориков.А.К.-Переплётное_дело(1955.I).[RUS].jpg",
     "printed 'ПЕРЕПЛЁТНОЕ ДЕЛО' = title, 'А.К. Здориков' (faint), 'МОСКВА 1955' (very faint); "
     "photo of a worn cloth cover"),
]

_JS_STR = r"'((?:[^'\\]|\\.)*)'"
_THING = re.compile(r"image:\s*" + _JS_STR + r".*?title:\s*" + _JS_STR, re.S)


def zubr_titles(git: Git, folder: str) -> dict[str, str]:
    """{image name: title} from src/data/<folder>.js (the Russian-language page)."""
    text = git.show(f"src/data/{folder}.js").decode("utf-8")
    out: dict[str, str] = {}
    # split on object boundaries so a title is never taken from the next item
    for chunk in re.split(r"\n\s*\},?\s*\n\s*\{", text):
        m = _THING.search(chunk)
        if m:
            out.setdefault(m.group(1), m.group(2).replace("\\'", "'"))
    return out


def ferris_captions(git: Git, path: str) -> dict[str, tuple[str, str]]:
    """{file stem: (path in the repository, caption)} from the collection07 JSON list."""
    out: dict[str, tuple[str, str]] = {}
    for groups in json.loads(git.show(path).decode("utf-8")):
        for entries in groups.values():
            for e in entries:
                src = e["src"]
                out.setdefault(src.rsplit("/", 1)[-1].rsplit(".", 1)[0], ("static" + src, e["caption"]))
    return out


_TS_NAME = re.compile(r"""\bname["']?\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""")


def bha21_title(git: Git, path: str) -> str:
    """entity.name of a banned-historical-archives <uuid>.ts module (the first `name:`)."""
    m = _TS_NAME.search(git.show(path).decode("utf-8"))
    if not m:
        raise ValueError(f"no entity name in {path}")
    return (m.group(1) if m.group(1) is not None else m.group(2)).replace("\\'", "'")


_RST_BOOK = re.compile(r"^\.\. athenaeum:book::[ \t]*(.*)$", re.M)
_RST_FIELD = re.compile(r"^[ \t]+:(title_localized|front):[ \t]*(.*?)[ \t]*$", re.M)


def hobbylit_titles(git: Git, path: str) -> dict[str, tuple[str, str]]:
    """{picture file name: (title, field)} from the catalogue's athenaeum:book blocks."""
    text = git.show(path).decode("utf-8")
    heads = list(_RST_BOOK.finditer(text))
    out: dict[str, tuple[str, str]] = {}
    for i, h in enumerate(heads):
        block = text[h.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        fields = _RST_FIELD.findall(block)
        local = next((v for k, v in fields if k == "title_localized"), None)
        title, field = (local, "title_localized") if local else (h.group(1).strip(), "athenaeum:book")
        for k, v in fields:
            if k == "front":
                out.setdefault(v.rsplit("/", 1)[-1], (title, field))
    return out


def menu_rows(git: Git, path: str) -> dict[str, dict]:
    text = git.show(path).decode("utf-8")
    return {r["objectid"]: r for r in csv.DictReader(io.StringIO(text))}


COLUMNS = ["id", "script", "source_repo", "source_path", "license", "sha256", "title",
           "title_source", "committed", "notes"]


def expected_sources() -> dict[str, str]:
    if not MANIFEST.exists():
        return {}
    with MANIFEST.open(encoding="utf-8", newline="") as f:
        return {r["id"]: r["sha256"] for r in csv.DictReader(f, delimiter="\t")}


def build(mirror: Path, render_all: Path | None):
    expected = expected_sources()
    gits = {k: Git(mirror, s) for k, s in SOURCES.items()}
    zubr_cache: dict[str, dict[str, str]] = {}
    menus_cache: dict[str, dict[str, dict]] = {}
    ferris_cache: dict[str, dict[str, tuple[str, str]]] = {}
    hobbylit_cache: dict[str, dict[str, tuple[str, str]]] = {}
    bha21_meta: Git | None = None
    rows, files, problems = [], {}, []
    for iid, script, skey, data, key, note in ITEMS:
        src, git = SOURCES[skey], gits[skey]
        if skey == "zubr":
            titles = zubr_cache.setdefault(data, zubr_titles(git, data))
            if key not in titles:
                problems.append(f"{iid}: no title for {key!r} in src/data/{data}.js")
                continue
            path = f"assets/pics/{ZUBR_FOLDERS[data]}/{key}.jpg"
            title, title_source = titles[key], f"src/data/{data}.js: things[image='{key}'].title"
        elif skey == "ferris":
            captions = ferris_cache.setdefault(data, ferris_captions(git, data))
            if key not in captions:
                problems.append(f"{iid}: no entry {key!r} in {data}")
                continue
            path, title = captions[key]
            title_source = f"{data}: {key.split('_')[0]}[src=.../{key}.jpg].caption"
        elif skey == "hobbylit":
            books = hobbylit_cache.setdefault(data, hobbylit_titles(git, data))
            if key not in books:
                problems.append(f"{iid}: no :front: {key!r} in {data}")
                continue
            path = HOBBYLIT_IMGS + key
            title, field = books[key]
            title_source = f"{data}: athenaeum:book[front=.../{key}].{field}"
        elif skey == "bha21":
            if bha21_meta is None:
                bha21_meta = Git(mirror, Source(key="bha21-config", repo=src.repo,
                                                commit=BHA21_META_COMMIT, license=""))
            if data not in bha21_meta.names:
                problems.append(f"{iid}: no {data} at {BHA21_META_COMMIT}")
                continue
            path, title = f"{key}/1.jpg", bha21_title(bha21_meta, data)
            title_source = f"{data} @ {BHA21_META_COMMIT} (branch config): entity.name"
        else:
            rows_by_id = menus_cache.setdefault(data, menu_rows(git, data))
            r = rows_by_id.get(key)
            if r is None:
                problems.append(f"{iid}: no row {key!r} in {data}")
                continue
            path = f"objects/{r['filename']}"
            title, title_source = r["title"], f"{data}: objectid={key}, column title"
        raw = git.show(path)
        digest = sha(raw)
        want = expected.get(iid)
        if want and want != digest:
            problems.append(f"{iid}: source sha256 {digest} != manifest {want}")
            continue
        committed = "no"  # no source grants redistribution, see SOURCES.md
        if committed == "yes":
            files[IMAGES / f"{iid}.jpg"] = downsize(raw, long_side=LONG_SIDE)[0]
        elif render_all is not None:
            files[render_all / f"{iid}.jpg"] = downsize(raw, long_side=LONG_SIDE)[0]
        rows.append({
            "id": iid, "script": script, "source_repo": f"{src.repo}@{src.commit}",
            "source_path": path, "license": src.license, "sha256": digest,
            "title": re.sub(r"\s+", " ", title).strip(), "title_source": title_source,
            "committed": committed, "notes": note,
        })
    rows.sort(key=lambda r: r["id"])
    return rows, files, problems


def manifest_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([str(r[c]).replace("\t", " ") for c in COLUMNS])
    return buf.getvalue().encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirror", type=Path, default=Path(os.environ.get("SCRIPT_TESTSET_MIRROR", "/work/.mirror")))
    ap.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    ap.add_argument("--all", type=Path, metavar="DIR", help="also render non-committed items into DIR")
    a = ap.parse_args(argv)
    rows, files, problems = build(a.mirror, a.all)
    for p in problems:
        print("problem:", p, file=sys.stderr)
    if problems:
        return 1
    man = manifest_bytes(rows)
    committed = {p: b for p, b in files.items() if p.is_relative_to(OUT_DIR)}
    on_disk = set(IMAGES.glob("*.jpg")) if IMAGES.exists() else set()
    if a.check:
        bad = [str(p) for p, b in committed.items() if not p.exists() or p.read_bytes() != b]
        if not MANIFEST.exists() or MANIFEST.read_bytes() != man:
            bad.append(str(MANIFEST))
        bad += [f"{p} (not in build)" for p in sorted(on_disk - set(committed))]
        for b in bad:
            print("differs:", b, file=sys.stderr)
        print(f"{len(rows)} items, {len(committed)} committed images: {'OK' if not bad else 'DIFFERENT'}")
        return 1 if bad else 0
    for p, b in sorted(files.items()):
        if not p.exists() or p.read_bytes() != b:
            atomic_write_bytes(p, b)
    for p in on_disk - set(committed):
        p.unlink()
    atomic_write_bytes(MANIFEST, man)
    per = {}
    for r in rows:
        per.setdefault(r["script"], [0, 0])
        per[r["script"]][0] += 1
        per[r["script"]][1] += r["committed"] == "yes"
    summary = ", ".join(f"{s} {n} ({c} committed)" for s, (n, c) in sorted(per.items()))
    extra = f"; all items rendered into {a.all}" if a.all else ""
    print(f"{len(rows)} items: {summary} -> {MANIFEST}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
