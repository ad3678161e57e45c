"""Tiny hand-written GLUE/SNLI examples, written to disk in the official file formats.

`write_fixtures(root)` lays out a folder exactly like the official downloads (see SPEC section 4):

- ``CoLA/{train,dev}.tsv``: no header; ``source, label, original_label, sentence``.
- ``SST-2/{train,dev}.tsv``: ``sentence, label``; sentences lower-cased and tokenized, and, like
  the real file, followed by one trailing space before the tab.
- ``MRPC``, ``STS-B``, ``QQP``, ``QNLI``, ``RTE``, ``WNLI``: ``{train,dev}.tsv`` with a header.
- ``MNLI/{train,dev_matched,dev_mismatched}.tsv``: train has ``label1`` only, dev files
  ``label1..label5``. Some sentences contain a double quote, one of them opening a field with an
  unbalanced ``"``, so that a reader which does not switch quoting off misreads the file.
- ``SNLI/snli_1.0_{train,dev,test}.jsonl``: one JSON object per line; every split holds two
  examples with gold label ``-`` that a reader must drop.

Every file is UTF-8, tab-separated (or JSON lines), with ``\\n`` line endings and no BOM.
Each task has 24-40 train and 12-16 dev (and SNLI test) examples, all classes in every split,
roughly balanced and interleaved so that any prefix is balanced too. SST-2 is larger (56 train,
28 dev) and clear-cut enough for a small pretrained encoder to learn it in a few steps.

Only the standard library is used, so the module can be imported anywhere.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["FIXTURE_TASKS", "write_fixtures"]

FIXTURE_TASKS: tuple[str, ...] = (
    "cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "snli",
)

_NLI_LABELS = ("entailment", "neutral", "contradiction")


def _mix(by_label: Mapping[object, Sequence[object]]) -> list[tuple]:
    """Round-robin over the classes (label appended last), so every prefix is balanced."""
    groups = [[(x if isinstance(x, tuple) else (x,)) + (label,) for x in items]
              for label, items in by_label.items()]
    out: list[tuple] = []
    for i in range(max(len(g) for g in groups)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


# --------------------------------------------------------------------------------------------
# CoLA: (label, sentence); 1 = acceptable. Each acceptable sentence is followed by a broken twin.
# --------------------------------------------------------------------------------------------
_COLA_SOURCES = ("gj04", "bc01", "ad03", "c_13", "kl93", "r-67", "cj99")

_COLA_TRAIN: list[tuple[int, str]] = [
    (1, "The children played in the garden all afternoon."),
    (0, "The children played the garden in all afternoon."),
    (1, "She put the book on the shelf."),
    (0, "She put the book."),
    (1, "John seems to be happy."),
    (0, "John is seemed to be happy."),
    (1, "We believed that the story was true."),
    (0, "We believed that the story true was."),
    (1, "The window was broken by the storm."),
    (0, "The window broke the storm by."),
    (1, "Who did you see at the party?"),
    (0, "Who did you see Mary and at the party?"),
    (1, "Mary is taller than her sister."),
    (0, "Mary is more taller than her sister."),
    (1, "The dog barked at the mailman."),
    (0, "The dog barked the mailman."),
    (1, "I wonder whether he will come."),
    (0, "I wonder whether will he come."),
    (1, "They made him wait outside."),
    (0, "They made him to waited outside."),
    (1, "The teacher asked the students to sit down."),
    (0, "The teacher asked the students sit down to."),
    (1, "Bill ate the apple quickly."),
    (0, "Bill ate quickly apple the."),
    (1, "It is likely that it will rain tomorrow."),
    (0, "It is likely it to rain tomorrow."),
    (1, "The more you read, the more you learn."),
    (0, "The more you read, you learn the more."),
]

_COLA_DEV: list[tuple[int, str]] = [
    (1, "The baker sold all the bread before noon."),
    (0, "The baker sold all bread the before noon."),
    (1, "Sarah wants to visit Paris next year."),
    (0, "Sarah wants visiting to Paris next year."),
    (1, "The letter that you sent arrived yesterday."),
    (0, "The letter that you sent it arrived yesterday."),
    (1, "He forgot where he left his keys."),
    (0, "He forgot where left he his keys."),
    (1, "Both of the students passed the exam."),
    (0, "Both of student passed the exam."),
    (1, "The river flows into the sea."),
    (0, "The river flows the sea into."),
    (1, "I have never seen such a big house."),
    (0, "I have never saw such a big house."),
]

# --------------------------------------------------------------------------------------------
# SST-2: movie-review phrases in the tokenized, lower-cased style of the real file.
# --------------------------------------------------------------------------------------------
_SST2_TRAIN_POS = [
    "a gorgeous , heartfelt film that stays with you long after the credits roll",
    "the performances are superb and the script is sharp and witty",
    "one of the most delightful comedies of the year",
    "a moving and beautifully acted story about family",
    "it 's a charming , funny and warm-hearted movie",
    "the director delivers a thrilling and intelligent adventure",
    "an absolute joy from start to finish",
    "smart , touching and wonderfully entertaining",
    "the cast is terrific and the music is lovely",
    "a brilliant film that deserves every award it gets",
    "i laughed , i cried , and i loved every minute of it",
    "a fresh , inventive and genuinely inspiring piece of cinema",
    "the best animated feature i have seen in years",
    "a powerful , honest drama with a wonderful lead performance",
    "beautifully shot and full of heart",
    "an elegant , moving and often hilarious film",
    "a triumph of storytelling that will delight audiences of all ages",
    "the dialogue sparkles and the pacing is perfect",
    "a remarkable , uplifting movie that earns its happy ending",
    "clever , stylish and a great deal of fun",
    "her performance is luminous and unforgettable",
    "a masterpiece of suspense with a stunning final act",
    "warm , witty and wise , this is a real pleasure",
    "an exciting and wonderfully crafted thriller",
    "the film is a rich , rewarding experience",
    "a sweet and funny romance that wins you over",
    "easily the most enjoyable movie of the summer",
    "a smart , affecting and superbly acted drama",
]
_SST2_TRAIN_NEG = [
    "a dull , lifeless film that drags on forever",
    "the acting is wooden and the script is painfully stupid",
    "one of the worst comedies of the year",
    "a boring and badly acted mess",
    "it 's a tedious , unfunny and cynical movie",
    "the director delivers a clumsy and pointless sequel",
    "an absolute chore from start to finish",
    "stupid , lazy and thoroughly annoying",
    "the cast is terrible and the music is grating",
    "an awful film that wastes the talent of its entire cast",
    "i was bored , i was irritated , and i hated every minute of it",
    "a stale , predictable and utterly forgettable piece of junk",
    "the worst animated feature i have seen in years",
    "a shallow , dishonest drama with a miserable lead performance",
    "ugly to look at and totally without heart",
    "a clumsy , tiresome and often embarrassing film",
    "a disaster of storytelling that will bore audiences of all ages",
    "the dialogue is clunky and the pacing is sluggish",
    "a depressing , pointless movie that does n't earn its ending",
    "dumb , ugly and no fun at all",
    "her performance is flat and instantly forgettable",
    "a mess of a thriller with a ridiculous final act",
    "cold , silly and shallow , this is a real waste of time",
    "a tedious and poorly crafted thriller",
    "the film is a long , painful experience",
    "a sour and joyless romance that never wins you over",
    "easily the most annoying movie of the summer",
    "a lazy , incoherent and badly written drama",
]
_SST2_DEV_POS = [
    "a wonderful , touching film with great performances",
    "the funniest and most charming movie i have seen this year",
    "an excellent , gripping story told with real warmth",
    "a beautiful and inspiring film",
    "it 's a delight , full of wit and heart",
    "the actors are fantastic and the story is moving",
    "a thoroughly enjoyable and clever comedy",
    "a gem of a movie that left me smiling",
    "an impressive , heartfelt and memorable drama",
    "a lovely film that is funny and sweet",
    "the script is brilliant and the ending is perfect",
    "a great , exciting ride that never lets up",
    "an entertaining and beautifully made adventure",
    "superb acting and a truly moving story",
]
_SST2_DEV_NEG = [
    "a terrible , boring film with awful performances",
    "the least funny and most tiresome movie i have seen this year",
    "a poor , plodding story told with no warmth at all",
    "an ugly and depressing film",
    "it 's a bore , devoid of wit or heart",
    "the actors are dreadful and the story is dull",
    "a thoroughly unpleasant and stupid comedy",
    "a dud of a movie that left me cold",
    "a pretentious , empty and forgettable drama",
    "a miserable film that is neither funny nor sweet",
    "the script is awful and the ending is ridiculous",
    "a tedious , sloppy ride that never gets going",
    "a boring and badly made adventure",
    "terrible acting and a truly dull story",
]
_SST2_TRAIN = _mix({1: _SST2_TRAIN_POS, 0: _SST2_TRAIN_NEG})
_SST2_DEV = _mix({1: _SST2_DEV_POS, 0: _SST2_DEV_NEG})

# --------------------------------------------------------------------------------------------
# MRPC: (sentence1, sentence2, quality); 1 = paraphrase.
# --------------------------------------------------------------------------------------------
_MRPC_TRAIN = _mix({
    1: [
        ("The company said its profit rose 12 percent in the third quarter.",
         "Third-quarter profit climbed 12 percent, the company said."),
        ("The judge ordered the former mayor to pay a fine of $5,000.",
         "The former mayor was ordered by the judge to pay a $5,000 fine."),
        ("Heavy rain forced officials to close the highway on Tuesday.",
         "Officials shut the highway on Tuesday because of heavy rain."),
        ("The new drug reduced the risk of heart attack by nearly a third, researchers said.",
         "Researchers said the new drug cut the risk of heart attack by almost one third."),
        ("Shares of the software maker fell 4 percent in early trading.",
         "The software maker's stock dropped 4 percent early in the session."),
        ("The senator announced on Monday that she will not seek re-election.",
         "On Monday the senator said she would not run for re-election."),
        ("Police arrested two men in connection with the robbery.",
         "Two men were arrested by police in connection with the robbery."),
        ("The airline will cut 2,000 jobs by the end of the year.",
         "By year end, the airline plans to eliminate 2,000 jobs."),
        ("The museum will reopen next month after a two-year renovation.",
         "After two years of renovation, the museum reopens next month."),
        ("The bill passed the House by a vote of 250 to 180.",
         "The House approved the bill 250-180."),
        ("Scientists found water ice near the moon's south pole.",
         "Water ice has been discovered near the south pole of the moon, scientists said."),
        ("The union rejected the latest contract offer from management.",
         "Management's latest contract offer was turned down by the union."),
        ("The storm left more than 100,000 homes without power.",
         "Over 100,000 homes lost power because of the storm."),
        ("The coach was fired after the team lost eight straight games.",
         "The team fired its coach following an eight-game losing streak."),
    ],
    0: [
        ("The central bank left interest rates unchanged on Thursday.",
         "The central bank is expected to raise rates early next year."),
        ("The mayor opened the new bridge with a short speech.",
         "The bridge cost more than $40 million to build."),
        ("Officials said the fire started in a kitchen on the second floor.",
         "Firefighters needed three hours to bring the fire under control."),
        ("The actor won his first Oscar in 1998.",
         "The actor has appeared in more than 40 films."),
        ("Sales of electric cars doubled last year.",
         "Gasoline prices rose for the third straight month."),
        ("The president will visit Japan and South Korea next week.",
         "The president met with Japanese officials last year in Washington."),
        ("The study followed 5,000 adults for ten years.",
         "Most of the adults in the study were women over 50."),
        ("The team signed the pitcher to a three-year contract.",
         "The pitcher missed most of last season with an elbow injury."),
        ("The city council voted to raise parking fees downtown.",
         "Downtown businesses have complained about a lack of parking for years."),
        ("The company recalled 30,000 toasters over fire risks.",
         "The company sold 30,000 toasters in its first month."),
        ("The school board approved a new budget on Wednesday.",
         "Teachers at the school went on strike last spring."),
        ("The storm is expected to reach the coast by Friday morning.",
         "The storm weakened after hitting the coast on Friday."),
        ("The author's new novel sold 200,000 copies in its first week.",
         "The author said she is already working on a sequel."),
        ("Prices for crude oil climbed 3 percent on Monday.",
         "Crude oil prices fell 3 percent on Monday."),
    ],
})

_MRPC_DEV = _mix({
    1: [
        ("The factory will close in March, putting 600 people out of work.",
         "About 600 workers will lose their jobs when the factory closes in March."),
        ("The governor signed the law on Friday.",
         "On Friday, the governor signed the measure into law."),
        ("The suspect was released on $10,000 bail.",
         "The suspect was freed after posting bail of $10,000."),
        ("Microsoft said the update will be available next week.",
         "The update will be released next week, Microsoft said."),
        ("Nearly half of the voters said they were undecided.",
         "Almost 50 percent of voters said they had not made up their minds."),
        ("The hospital treated 40 people for minor injuries.",
         "Forty people were treated at the hospital for minor injuries."),
        ("The festival was canceled because of safety concerns.",
         "Organizers called off the festival, citing safety concerns."),
    ],
    0: [
        ("The factory produces 5,000 cars a month.",
         "The factory was built in 1985 near the river."),
        ("The governor vetoed the tax bill on Friday.",
         "The governor signed a different tax bill last year."),
        ("The suspect has been charged with burglary.",
         "The victim was not at home at the time of the burglary."),
        ("Microsoft reported higher earnings on Thursday.",
         "Microsoft will hold its developer conference in May."),
        ("Turnout was the lowest in two decades.",
         "Turnout is expected to be high this year."),
        ("The hospital is hiring 200 nurses.",
         "The hospital closed its emergency room last year."),
        ("The festival attracted 50,000 visitors.",
         "The festival will move to a larger park next summer."),
    ],
})

# --------------------------------------------------------------------------------------------
# STS-B: (sentence1, sentence2, similarity score in [0, 5]).
# --------------------------------------------------------------------------------------------
_STSB_SOURCES = (  # (genre, filename, year), assigned in turn
    ("main-captions", "MSRvid", "2012test"),
    ("main-news", "headlines", "2013"),
    ("main-captions", "images", "2014"),
    ("main-forum", "deft-forum", "2014"),
)

_STSB_TRAIN: list[tuple[str, str, float]] = [
    ("A man is playing a guitar.", "A man is playing the guitar.", 5.0),
    ("A woman is slicing an onion.", "A woman is cutting an onion.", 4.6),
    ("A dog is running in the park.", "A dog runs across the grass.", 3.8),
    ("A child is eating an apple.", "A child is eating a banana.", 2.4),
    ("A man is riding a horse.", "A woman is reading a book.", 0.0),
    ("Two men are playing chess.", "Two people are playing a board game.", 3.4),
    ("A cat is sleeping on the couch.", "A cat is lying on a sofa.", 4.2),
    ("The stock market fell sharply on Monday.", "Stocks dropped steeply on Monday.", 4.8),
    ("A girl is singing on a stage.", "A girl is dancing on a stage.", 2.6),
    ("A woman is cooking rice.", "A man is fixing a car.", 0.2),
    ("Heavy snow closed schools across the state.",
     "Schools were closed statewide after a big snowstorm.", 4.4),
    ("A man is cutting paper with scissors.", "A man is folding paper.", 2.0),
    ("The president visited the flooded town.", "The president spoke about the economy.", 0.8),
    ("A boy is kicking a ball.", "A boy is playing soccer.", 3.6),
    ("A bird is sitting on a branch.", "A bird perches on a tree limb.", 4.6),
    ("A woman is peeling a potato.", "A woman is peeling a carrot.", 2.8),
    ("The train arrived late at the station.", "The bus left the station early.", 1.0),
    ("A man is playing the piano.", "A man is playing the drums.", 1.8),
    ("Police arrested a man after the robbery.",
     "A man was arrested by police following the robbery.", 4.8),
    ("A dog is barking at a cat.", "A cat is chasing a mouse.", 0.6),
    ("Two kids are swimming in a pool.", "Two children are swimming.", 4.0),
    ("A woman is writing a letter.", "A woman is typing on a computer.", 1.6),
    ("Oil prices rose for a third day.", "Oil prices increased again.", 3.2),
    ("A man is climbing a mountain.", "A man is hiking up a hill.", 3.0),
    ("The team won the championship game.", "The team lost in the first round.", 1.2),
    ("A horse is eating hay.", "The sun is setting over the ocean.", 0.0),
    ("A woman is drawing a picture.", "A woman is painting a picture.", 3.6),
    ("A man is pouring water into a glass.", "A man pours water into a glass.", 5.0),
]

_STSB_DEV: list[tuple[str, str, float]] = [
    ("A man is playing a flute.", "A man is playing a recorder.", 3.4),
    ("A woman is dancing in the rain.", "A woman dances in the rain.", 5.0),
    ("A boy is riding a bicycle.", "A boy is riding a bike down the road.", 4.2),
    ("A cat is drinking milk.", "A dog is eating food.", 1.0),
    ("A man is shaving his face.", "A man is chopping wood.", 0.2),
    ("The company reported record profits.", "The firm posted its highest earnings ever.", 4.4),
    ("A chef is slicing tomatoes.", "A chef is slicing bread.", 2.6),
    ("Two women are talking on a bench.", "Two women are sitting on a bench.", 2.8),
    ("A plane is landing at the airport.", "A plane is taking off from the airport.", 2.2),
    ("A child is laughing loudly.", "A car is parked outside.", 0.0),
    ("The city will build a new bridge.", "A new bridge will be built by the city.", 4.8),
    ("A man is lifting weights.", "A man is exercising in a gym.", 3.6),
    ("A woman is feeding a baby.", "A woman is holding a baby.", 2.4),
    ("Rain is expected over the weekend.", "The weekend forecast calls for rain.", 4.6),
]

# --------------------------------------------------------------------------------------------
# QQP: (question1, question2, is_duplicate).
# --------------------------------------------------------------------------------------------
_QQP_TRAIN = _mix({
    1: [
        ("How can I learn Python quickly?", "What is the fastest way to learn Python?"),
        ("What is the best way to lose weight?", "How can I lose weight effectively?"),
        ("How do I improve my English speaking skills?", "How can I speak English more fluently?"),
        ("Why is the sky blue?", "What makes the sky look blue?"),
        ("What are the best books to read in 2016?", "Which books are the best to read in 2016?"),
        ("How do I get a job at Google?", "What should I do to get hired by Google?"),
        ("How can I stop procrastinating?", "What are some ways to stop procrastination?"),
        ("Is it safe to drink tap water in Mexico?", "Can you drink the tap water in Mexico?"),
        ("How do I make money online?", "What are some ways to earn money on the internet?"),
        ("What is the meaning of life?", "What do you think is the meaning of life?"),
        ("How do I reset my Gmail password?", "How can I change my forgotten Gmail password?"),
        ("What is the best programming language for beginners?",
         "Which programming language should a beginner learn first?"),
        ("How can I sleep better at night?", "What can I do to improve my sleep?"),
        ("How do airplanes fly?", "What keeps an airplane in the air?"),
    ],
    0: [
        ("How can I learn Java?", "How can I learn to play the guitar?"),
        ("What is the capital of Australia?", "What is the population of Australia?"),
        ("How do I cook rice?", "How long should I boil an egg?"),
        ("Why do cats purr?", "Why do dogs wag their tails?"),
        ("What is the best laptop for students?", "What is the best phone under $300?"),
        ("How do I start a small business?", "How do I close a small business?"),
        ("Is coffee bad for your health?", "Is green tea good for weight loss?"),
        ("What was the cause of World War I?", "What was the cause of World War II?"),
        ("How do I become a doctor in India?", "How much does a doctor earn in India?"),
        ("What are the benefits of yoga?", "What are the benefits of running every day?"),
        ("How can I get a US visa?", "How long does it take to get a UK visa?"),
        ("Who is the best football player of all time?",
         "Who is the richest football club in the world?"),
        ("How do I delete my Facebook account?", "How do I make my Facebook account private?"),
        ("What does a data scientist do?", "How do I become a data scientist?"),
    ],
})

_QQP_DEV = _mix({
    1: [
        ("How do I learn to draw?", "What is the best way to learn drawing?"),
        ("What are some good movies to watch?", "Which movies should I watch?"),
        ("How can I be more productive?", "What are some tips to increase productivity?"),
        ("Why do we dream?", "What causes dreams?"),
        ("How do I prepare for a job interview?",
         "What should I do to get ready for an interview?"),
        ("How can I save money every month?", "What are good ways to save money monthly?"),
        ("What is the best way to learn guitar?", "How should I start learning to play guitar?"),
    ],
    0: [
        ("How do I learn French?", "How do I learn German?"),
        ("What is the tallest mountain in Europe?", "What is the longest river in Europe?"),
        ("How can I be more confident?", "How can I be more creative?"),
        ("Why do onions make you cry?", "How do you chop an onion?"),
        ("What is the best time to visit Japan?", "What is the best food in Japan?"),
        ("How can I fix a slow laptop?", "How can I choose a new laptop?"),
        ("What is machine learning?", "What is the salary of a machine learning engineer?"),
    ],
})

# --------------------------------------------------------------------------------------------
# MNLI: (genre, sentence1, sentence2, gold_label). Matched dev uses the train genres,
# mismatched dev five others. Note the double quotes: one sentence opens with an unbalanced ".
# --------------------------------------------------------------------------------------------
_MNLI_TRAIN = _mix({
    "entailment": [
        ("travel", "The hotel is a short walk from the beach and has a large pool.",
         "The hotel is near the beach."),
        ("government", "The agency will publish its annual report in March.",
         "The agency releases a report every year."),
        ("fiction", '"We have no rooms left," the clerk said without looking up.',
         "The clerk said there were no rooms available."),
        ("telephone", "yeah i go fishing with my dad almost every weekend",
         "I often go fishing with my father."),
        ("slate", "The critic praised the novel for its vivid characters.",
         "The critic liked the novel."),
        ("travel", "Most of the old town was rebuilt after the great fire of 1666.",
         "The old town was damaged by a fire."),
        ("government", "All employees must complete the safety training by June 30.",
         "Employees are required to do safety training."),
        ("fiction", "She closed the door quietly so the baby would not wake up.",
         "She tried not to wake the baby."),
        ("telephone", "we bought a new car last year and it has been great",
         "The car we bought last year has worked well."),
        ("slate", "The senator voted against the bill twice.",
         "The senator opposed the bill."),
    ],
    "neutral": [
        ("travel", "The museum is open every day except Monday.",
         "The museum is the most popular attraction in the city."),
        ("government", "The program provides loans to small farmers.",
         "Most of the loans go to farmers in the south."),
        ("fiction", '"Stay close to the wall and don\'t make a sound, he whispered.',
         "He was afraid that someone would hear them."),
        ("telephone", "i've been working at the bank for about ten years now",
         "I plan to quit my job at the bank soon."),
        ("slate", "The film opened in theaters last Friday.",
         "The film earned more than $10 million in its first weekend."),
        ("travel", "The island can be reached by ferry from the mainland.",
         "The ferry ride takes about two hours."),
        ("government", "The report recommends hiring more inspectors.",
         "The agency will hire 50 new inspectors next year."),
        ("fiction", "The old man sat on the porch and watched the road.",
         "The old man was waiting for his son."),
        ("telephone", "my kids love playing soccer in the summer",
         "My kids are on a soccer team that won a trophy."),
        ("slate", "The magazine's editor resigned on Tuesday.",
         "The editor left because of a scandal."),
    ],
    "contradiction": [
        ("travel", "The beach is crowded with tourists all summer long.",
         "Nobody visits the beach in the summer."),
        ("government", "The law took effect on January 1.",
         "The law has not taken effect yet."),
        ("fiction", "He laughed loudly and told the whole room the joke again.",
         "He stayed silent the whole evening."),
        ("telephone", "no i really don't like cold weather at all",
         "I love cold weather."),
        ("slate", "The new phone sold out within hours of its release.",
         "Nobody wanted to buy the new phone."),
        ("travel", "The restaurant serves only vegetarian food.",
         "The restaurant is famous for its steaks."),
        ("government", "The committee approved the budget unanimously.",
         "Several committee members voted against the budget."),
        ("fiction", 'The carpenter cut the board to exactly 12" so that it fit the shelf.',
         "The carpenter never cut the board."),
        ("telephone", "we usually eat dinner together as a family",
         "We never eat dinner together."),
        ("slate", "The columnist has written about politics for twenty years.",
         "The columnist has never written about politics."),
    ],
})

_MNLI_DEV_MATCHED = _mix({
    "entailment": [
        ("travel", "The castle sits on a hill above the village.",
         "The castle is higher than the village."),
        ("government", "The office will be closed on public holidays.",
         "The office does not open on holidays."),
        ("fiction", '"I will be back before dark," she promised her mother.',
         "She told her mother she would return before dark."),
        ("telephone", "i watch the news every night before bed",
         "I watch the news in the evening."),
        ("slate", "The band's new album is its best in a decade.",
         "The album is very good."),
    ],
    "neutral": [
        ("travel", "The market sells fresh fish every morning.",
         "The fish at the market is caught by local fishermen."),
        ("government", "The department received 3,000 complaints last year.",
         "Most of the complaints were about delays."),
        ("fiction", "He packed his bag and left before sunrise.",
         "He was going to visit his brother."),
        ("telephone", "we moved to Texas about five years ago",
         "We moved to Texas for a new job."),
        ("slate", "The author gave a talk at the library.",
         "The talk was attended by hundreds of people."),
    ],
    "contradiction": [
        ("travel", "The trail is closed during the winter months.",
         "The trail is open all year."),
        ("government", "The tax applies only to large companies.",
         "Every company must pay the tax, regardless of size."),
        ("fiction", "The room was dark and completely silent.",
         "Loud music filled the bright room."),
        ("telephone", "i have never been to Europe",
         "I travel to Europe every summer."),
        ("slate", "The show was canceled after one season.",
         "The show ran for ten seasons."),
    ],
})

_MNLI_DEV_MISMATCHED = _mix({
    "entailment": [
        ("letters", "Your gift of $50 will buy school books for two children.",
         "A donation can pay for school books."),
        ("nineeleven", "The flight departed from Boston at 7:59 a.m.",
         "The flight left Boston in the morning."),
        ("oup", "The wool was spun by hand in small workshops.",
         "The wool was spun manually."),
        ("facetoface", "I grew up on a farm, so I know how to drive a tractor.",
         "I can drive a tractor."),
        ("verbatim", 'The word "sandwich" is named after an English earl.',
         "The word sandwich comes from a title."),
    ],
    "neutral": [
        ("letters", "We are writing to ask for your support this year.",
         "The organization needs money to build a new school."),
        ("nineeleven", "The pilots did not report any problems before takeoff.",
         "The pilots had flown together many times."),
        ("oup", "The factory employed many women from the nearby towns.",
         "The women were paid less than the men."),
        ("facetoface", "We went to the lake last weekend with some friends.",
         "It rained at the lake last weekend."),
        ("verbatim", "Many English words come from Latin.",
         "Latin is the hardest language to learn."),
    ],
    "contradiction": [
        ("letters", "This is the first time we have asked you for a donation.",
         "We ask you for a donation every year."),
        ("nineeleven", "The building was evacuated within minutes.",
         "Nobody left the building."),
        ("oup", "Cotton was the main product of the region.",
         "The region produced no cotton."),
        ("facetoface", "I have lived in this city my whole life.",
         "I just moved to this city last month."),
        ("verbatim", "The phrase is used only in British English.",
         "The phrase is common in American English."),
    ],
})

# --------------------------------------------------------------------------------------------
# QNLI: (question, sentence, label); entailment = the sentence answers the question.
# --------------------------------------------------------------------------------------------
_QNLI_TRAIN = _mix({
    "entailment": [
        ("What is the capital of France?",
         "Paris is the capital and most populous city of France."),
        ("When did World War II end?",
         "World War II ended in 1945 with the surrender of Germany and Japan."),
        ("Who wrote Romeo and Juliet?",
         "Romeo and Juliet is a tragedy written by William Shakespeare."),
        ("What gas do plants absorb from the air?",
         "Plants absorb carbon dioxide from the air and release oxygen."),
        ("How many legs does a spider have?",
         "Spiders have eight legs, unlike insects, which have six."),
        ("What is the largest ocean on Earth?",
         "The Pacific Ocean is the largest and deepest ocean on Earth."),
        ("Who painted the Mona Lisa?",
         "The Mona Lisa was painted by Leonardo da Vinci in the early sixteenth century."),
        ("What is the boiling point of water at sea level?",
         "At sea level, water boils at 100 degrees Celsius."),
        ("Which planet is known as the Red Planet?",
         "Mars is often called the Red Planet because of its reddish appearance."),
        ("What language is spoken in Brazil?",
         "The official language of Brazil is Portuguese."),
        ("When was the first iPhone released?",
         "Apple released the first iPhone in June 2007."),
        ("What is the main ingredient of guacamole?",
         "Guacamole is a dip made mainly from mashed avocado."),
        ("Who discovered penicillin?",
         "Penicillin was discovered by Alexander Fleming in 1928."),
        ("How long is a marathon?",
         "A marathon is a long-distance race of 42.195 kilometres."),
    ],
    "not_entailment": [
        ("What is the capital of Canada?",
         "Canada is the second-largest country in the world by area."),
        ("When did World War I begin?",
         "World War I involved many of the world's great powers."),
        ("Who wrote Pride and Prejudice?",
         "Pride and Prejudice is set in rural England in the early nineteenth century."),
        ("What do bees collect from flowers?",
         "Bees live in colonies that can contain thousands of individuals."),
        ("How many bones are in the human body?",
         "The human skeleton gives the body its shape and protects its organs."),
        ("What is the longest river in Africa?",
         "Africa is home to a wide variety of wildlife."),
        ("Who designed the Eiffel Tower?",
         "The Eiffel Tower is one of the most visited monuments in the world."),
        ("At what temperature does water freeze?",
         "Water covers about 71 percent of the Earth's surface."),
        ("Which planet has the most moons?",
         "The planets of the solar system orbit the Sun."),
        ("What language is spoken in Argentina?",
         "Argentina is famous for its beef and its tango music."),
        ("When was Google founded?",
         "Google's headquarters are located in Mountain View, California."),
        ("What is the main ingredient of hummus?",
         "Hummus is popular throughout the Middle East."),
        ("Who invented the telephone?",
         "The telephone changed the way people communicate."),
        ("How tall is Mount Everest?",
         "Mount Everest lies on the border between Nepal and China."),
    ],
})

_QNLI_DEV = _mix({
    "entailment": [
        ("What is the chemical symbol for gold?",
         "The chemical symbol for gold is Au, from the Latin word aurum."),
        ("Who was the first person to walk on the Moon?",
         "Neil Armstrong became the first person to walk on the Moon in 1969."),
        ("What is the largest desert in Asia?",
         "The Gobi Desert is the largest desert in Asia."),
        ("How many players are on a soccer team?",
         "Each soccer team has eleven players on the field."),
        ("Where is the Great Barrier Reef?",
         "The Great Barrier Reef lies off the coast of Queensland, Australia."),
        ("What do pandas mainly eat?",
         "Giant pandas feed almost entirely on bamboo."),
        ("Who composed the Fifth Symphony?",
         "Ludwig van Beethoven composed his Fifth Symphony between 1804 and 1808."),
    ],
    "not_entailment": [
        ("What is the chemical symbol for silver?",
         "Silver is a soft, white metal used in jewellery."),
        ("Who was the first person in space?",
         "The space race was a competition between the United States and the Soviet Union."),
        ("What is the largest desert in the world?",
         "Deserts receive very little rain each year."),
        ("How long is a basketball game?",
         "Basketball was invented by James Naismith."),
        ("Where is Machu Picchu?",
         "Machu Picchu attracts many tourists every year."),
        ("What do koalas eat?",
         "Koalas sleep up to twenty hours a day."),
        ("Who composed The Four Seasons?",
         "The Four Seasons is a set of four violin concertos."),
    ],
})

# --------------------------------------------------------------------------------------------
# RTE: (sentence1, sentence2, label).
# --------------------------------------------------------------------------------------------
_RTE_TRAIN = _mix({
    "entailment": [
        ("The Louvre in Paris, which houses the Mona Lisa, attracted nearly ten million "
         "visitors last year.", "The Mona Lisa is in the Louvre."),
        ("After years of talks, the two companies agreed to merge in a deal worth $4 billion.",
         "The two companies will merge."),
        ("Maria Lopez, who founded the bakery in 1990, still bakes the bread herself every "
         "morning.", "Maria Lopez founded a bakery."),
        ("The earthquake, which struck early on Sunday, destroyed hundreds of homes in the "
         "northern province.", "An earthquake destroyed homes."),
        ("Researchers at the university have developed a vaccine that protects mice against "
         "the virus.", "A vaccine was developed by university researchers."),
        ("The river flooded the town after three days of heavy rain, forcing thousands to "
         "leave their homes.", "Thousands of people left their homes because of a flood."),
        ("The novel, written by a retired teacher, has been translated into twenty languages.",
         "The novel has been translated."),
        ("Tom Harris was elected mayor of the city in 2010 and re-elected four years later.",
         "Tom Harris was elected mayor twice."),
        ("The factory, owned by a German company, employs about 800 people.",
         "The factory has about 800 employees."),
        ("Solar panels installed on the school roof now supply most of its electricity.",
         "The school gets electricity from solar panels."),
        ("The band played its final concert in London before splitting up in 2005.",
         "The band broke up in 2005."),
        ("Thanks to a new vaccine, cases of the disease fell by 90 percent in a decade.",
         "Cases of the disease have dropped."),
        ("The minister resigned on Friday after the newspaper published the letters.",
         "The minister resigned."),
        ("Coffee was first grown in Ethiopia and later spread to Yemen and beyond.",
         "Coffee was grown in Ethiopia."),
    ],
    "not_entailment": [
        ("The Louvre in Paris attracted nearly ten million visitors last year.",
         "The Louvre is the largest museum in the world."),
        ("The two companies have been in talks about a merger for several years.",
         "The two companies have merged."),
        ("Maria Lopez works at a bakery in the center of town.",
         "Maria Lopez owns the bakery."),
        ("The earthquake struck early on Sunday in the northern province.",
         "The earthquake killed hundreds of people."),
        ("Researchers at the university are testing a vaccine in mice.",
         "The vaccine protects humans against the virus."),
        ("Heavy rain fell on the town for three days.",
         "The river flooded the town."),
        ("The novel was written by a retired teacher.",
         "The novel won a major prize."),
        ("Tom Harris ran for mayor of the city in 2010.",
         "Tom Harris was elected mayor in 2010."),
        ("The factory is owned by a German company.",
         "The factory is located in Germany."),
        ("The school is planning to install solar panels on its roof.",
         "The school gets all its electricity from solar panels."),
        ("The band played a concert in London in 2005.",
         "The band broke up in London."),
        ("Scientists are working on a vaccine against the disease.",
         "The disease has been eliminated."),
        ("The newspaper published letters written by the minister.",
         "The minister resigned after the letters were published."),
        ("Ethiopia is one of the largest coffee producers in Africa.",
         "Coffee was first grown in Yemen."),
    ],
})

_RTE_DEV = _mix({
    "entailment": [
        ("The bridge, which opened in 1937, carries more than 100,000 vehicles a day.",
         "The bridge opened in 1937."),
        ("Dr. Chen, a heart surgeon, has performed over 3,000 operations during her career.",
         "Dr. Chen is a surgeon."),
        ("The city banned cars from the old town center in order to reduce pollution.",
         "Cars are not allowed in the old town center."),
        ("The volcano erupted on Tuesday, sending ash several kilometres into the sky.",
         "A volcano erupted."),
        ("The company, based in Seattle, sells coffee in over 60 countries.",
         "The company is based in Seattle."),
        ("After winning the election, the new president promised to lower taxes.",
         "The new president won the election."),
        ("The painting was stolen in 1990 and has never been recovered.",
         "The painting is still missing."),
    ],
    "not_entailment": [
        ("The bridge carries more than 100,000 vehicles a day.",
         "The bridge is the longest in the country."),
        ("Dr. Chen works at the city hospital.",
         "Dr. Chen is a heart surgeon."),
        ("The city is considering a ban on cars in the old town center.",
         "Cars have been banned from the old town center."),
        ("Scientists are monitoring the volcano closely.",
         "The volcano erupted on Tuesday."),
        ("The company sells coffee in over 60 countries.",
         "The company was founded in Seattle."),
        ("The new president promised to lower taxes.",
         "Taxes have been lowered."),
        ("The painting was stolen from the museum in 1990.",
         "The thief was caught a year later."),
    ],
})

# --------------------------------------------------------------------------------------------
# WNLI: Winograd-style schemas (sentence, right reading, wrong reading) -> label 1 / 0.
# --------------------------------------------------------------------------------------------
_WNLI_TRAIN_SCHEMAS = [
    ("The trophy does not fit in the suitcase because it is too big.",
     "The trophy is too big.", "The suitcase is too big."),
    ("The pot would not fit on the stove because it was too small.",
     "The stove was too small.", "The pot was too small."),
    ("Anna thanked Beth because she had helped her move.",
     "Beth had helped her move.", "Anna had helped her move."),
    ("The dog chased the cat until it climbed a tree.",
     "The cat climbed a tree.", "The dog climbed a tree."),
    ("The heavy book fell on the glass and it shattered.",
     "The glass shattered.", "The heavy book shattered."),
    ("Paul called George because he needed advice.",
     "Paul needed advice.", "George needed advice."),
    ("The man couldn't lift his son because he was so weak.",
     "The man was so weak.", "The son was so weak."),
    ("The sculpture rolled off the shelf because it wasn't level.",
     "The shelf wasn't level.", "The sculpture wasn't level."),
    ("Sam gave Tim his old bike because he had bought a new one.",
     "Sam had bought a new one.", "Tim had bought a new one."),
    ("The firemen arrived after the police because they were coming from far away.",
     "The firemen were coming from far away.", "The police were coming from far away."),
    ("Jane knocked on Susan's door, but she did not answer.",
     "Susan did not answer.", "Jane did not answer."),
    ("The fish ate the worm because it was hungry.",
     "The fish was hungry.", "The worm was hungry."),
    ("The lawyer asked the witness a question, but he refused to answer it.",
     "The witness refused to answer it.", "The lawyer refused to answer it."),
    ("The table would not fit through the door because it was too wide.",
     "The table was too wide.", "The door was too wide."),
]
_WNLI_DEV_SCHEMAS = [
    ("The bird could not catch the moth because it was too fast.",
     "The moth was too fast.", "The bird was too fast."),
    ("Emma lent Mia her umbrella because she had forgotten her own.",
     "Mia had forgotten her own.", "Emma had forgotten her own."),
    ("The ball broke the window because it was made of thin glass.",
     "The window was made of thin glass.", "The ball was made of thin glass."),
    ("The student asked the teacher for help because he was confused.",
     "The student was confused.", "The teacher was confused."),
    ("The car overtook the truck because it was going faster.",
     "The car was going faster.", "The truck was going faster."),
    ("Tom beat Jerry at chess because he had practiced all week.",
     "Tom had practiced all week.", "Jerry had practiced all week."),
    ("The coat did not keep the boy warm because it was too thin.",
     "The coat was too thin.", "The boy was too thin."),
]


def _wnli(schemas: Sequence[tuple[str, str, str]]) -> list[tuple[str, str, int]]:
    """Two examples per schema, the right reading first on even schemas, second on odd ones."""
    out: list[tuple[str, str, int]] = []
    for i, (sentence, right, wrong) in enumerate(schemas):
        pair = [(sentence, right, 1), (sentence, wrong, 0)]
        out.extend(pair if i % 2 == 0 else pair[::-1])
    return out


_WNLI_TRAIN = _wnli(_WNLI_TRAIN_SCHEMAS)
_WNLI_DEV = _wnli(_WNLI_DEV_SCHEMAS)

# --------------------------------------------------------------------------------------------
# SNLI: one caption with an entailed, a neutral and a contradicting hypothesis, as in the real
# data; plus two pairs per split without annotator consensus (gold label "-").
# --------------------------------------------------------------------------------------------
_SNLI_TRAIN_CAPTIONS = [
    ("A man in a blue shirt is riding a bicycle down a city street.",
     "A man is riding a bike.", "A man is riding his bike to work.",
     "A man is sleeping in his bed."),
    ("Two children are playing with a ball on the beach.",
     "Kids are playing outside.", "The children are brother and sister.",
     "The children are sitting in a classroom."),
    ("A woman is cooking dinner in a small kitchen.",
     "A woman is preparing food.", "A woman is cooking for her family.",
     "A woman is swimming in a lake."),
    ("A dog is jumping to catch a frisbee in the park.",
     "An animal is outdoors.", "The dog is catching its owner's frisbee.",
     "A cat is sleeping on a couch."),
    ("An old man is reading a newspaper on a bench.",
     "A man is reading.", "The man is waiting for a bus.",
     "The man is running a marathon."),
    ("A group of people are dancing at a wedding.",
     "People are dancing.", "The bride is dancing with her father.",
     "Nobody is dancing."),
    ("A girl in a red dress is holding an umbrella in the rain.",
     "It is raining.", "The girl is walking home from school.",
     "The girl is standing in the sunshine with no umbrella."),
    ("Three men are repairing a roof on a sunny day.",
     "Men are working on a roof.", "The men are paid well for the work.",
     "The men are eating lunch indoors."),
    ("A musician is playing a guitar on a street corner.",
     "Someone is playing music.", "The musician is hoping for tips.",
     "The musician is playing a piano in a concert hall."),
    ("A young boy is eating an ice cream cone.",
     "A child is eating.", "The boy is eating strawberry ice cream.",
     "The boy is crying because he has no food."),
]
_SNLI_TRAIN_NO_GOLD = [
    ("A woman in a hat is walking past a shop window.", "The woman is shopping for a new hat."),
    ("Two dogs are running through deep snow.", "The dogs are playing together."),
]
_SNLI_DEV_CAPTIONS = [
    ("A woman is jogging along the river in the morning.",
     "A woman is exercising.", "The woman is training for a race.",
     "The woman is asleep at home."),
    ("A chef is chopping vegetables in a restaurant kitchen.",
     "A person is cutting vegetables.", "The chef is making soup.",
     "The chef is washing a car."),
    ("Two boys are climbing a tree in the backyard.",
     "Children are climbing.", "The boys are looking for a lost ball.",
     "The boys are watching television."),
    ("A man is playing fetch with his dog on the beach.",
     "A man is with his dog.", "The dog is a golden retriever.",
     "The man is alone in his office."),
]
_SNLI_DEV_NO_GOLD = [
    ("A little girl is painting a picture at a table.", "The girl is painting her mother."),
    ("A crowd is watching fireworks over the city.", "The people are celebrating a holiday."),
]
_SNLI_TEST_CAPTIONS = [
    ("A man is fishing from a small boat on a lake.",
     "A man is on a boat.", "The man is fishing for dinner.",
     "The man is driving a truck."),
    ("Two women are drinking coffee at a cafe.",
     "Women are having a drink.", "The women are old friends.",
     "The women are sleeping."),
    ("A child is building a sandcastle on the beach.",
     "A kid is playing in the sand.", "The child is on vacation with his family.",
     "The child is in a snowy forest."),
    ("A cyclist is racing down a mountain road.",
     "A person is riding a bike.", "The cyclist is in a professional race.",
     "The cyclist is sitting on a couch."),
]
_SNLI_TEST_NO_GOLD = [
    ("A man in a suit is talking on his phone.", "The man is talking to his boss."),
    ("A woman is carrying a basket of fruit.", "The woman is going to the market."),
]


def _snli(captions: Sequence[tuple[str, str, str, str]],
          no_gold: Sequence[tuple[str, str]]) -> list[tuple[int, str, str, str]]:
    """(caption number, premise, hypothesis, gold); "-" pairs go in the middle and at the end."""
    rows = [(k, c[0], hyp, gold) for k, c in enumerate(captions)
            for hyp, gold in zip(c[1:], _NLI_LABELS)]
    extra = [(len(captions) + j, p, h, "-") for j, (p, h) in enumerate(no_gold)]
    middle = 3 * (len(captions) // 2)
    return rows[:middle] + extra[:1] + rows[middle:] + extra[1:]


_SNLI_TRAIN = _snli(_SNLI_TRAIN_CAPTIONS, _SNLI_TRAIN_NO_GOLD)
_SNLI_DEV = _snli(_SNLI_DEV_CAPTIONS, _SNLI_DEV_NO_GOLD)
_SNLI_TEST = _snli(_SNLI_TEST_CAPTIONS, _SNLI_TEST_NO_GOLD)


# --------------------------------------------------------------------------------------------
# Parse strings (never used by the project, only present because the real files have them).
# --------------------------------------------------------------------------------------------
_TOKEN_RE = re.compile(r"\w+(?=n't\b)|n't\b|'\w*|\w+(?:[.,:-]\w+)*|[^\w\s]")
_PTB_ESCAPES = {'"': "''", "(": "-LRB-", ")": "-RRB-"}


def _tokens(sentence: str) -> list[str]:
    """Penn-Treebank-like tokens: punctuation split off, "don't" -> "do n't"."""
    return [_PTB_ESCAPES.get(t, t) for t in _TOKEN_RE.findall(sentence)]


def _binary_parse(sentence: str) -> str:
    """A plausible unlabeled binary bracketing, e.g. ``( ( The cat ) ( sat . ) )``."""
    toks = _tokens(sentence)

    def branch(ts: list[str]) -> str:
        return ts[0] if len(ts) == 1 else f"( {ts[0]} {branch(ts[1:])} )"

    if len(toks) >= 4:
        return f"( ( {toks[0]} {toks[1]} ) {branch(toks[2:])} )"
    return branch(toks)


def _parse(sentence: str) -> str:
    """A short labeled parse, e.g. ``(ROOT (S (NN The) (NN cat) (NN sat) (. .)))``."""
    leaves = (f"({t if not t[0].isalnum() else 'NN'} {t})" for t in _tokens(sentence))
    return f"(ROOT (S {' '.join(leaves)}))"


def _annotators(gold: str, i: int, n: int = 5) -> list[str]:
    """`n` annotator labels whose majority is `gold`; every other example has one dissent."""
    if gold == "-":  # no label reaches three votes
        return ["neutral", "contradiction", "entailment", "neutral", "contradiction"][:n]
    labels = [gold] * n
    if n > 1 and i % 2 == 1:
        labels[1 + i % (n - 1)] = _NLI_LABELS[(_NLI_LABELS.index(gold) + 1 + i // 2 % 2) % 3]
    return labels


# --------------------------------------------------------------------------------------------
# _Row builders: turn the stored examples into the columns of each official file.
# --------------------------------------------------------------------------------------------
_Row = Sequence[object]

_HEADERS: dict[str, tuple[str, ...]] = {
    "sst2": ("sentence", "label"),
    "mrpc": ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
    "stsb": ("index", "genre", "filename", "year", "old_index", "source1", "source2",
             "sentence1", "sentence2", "score"),
    "qqp": ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
    "mnli_train": ("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                   "sentence2_binary_parse", "sentence1_parse", "sentence2_parse",
                   "sentence1", "sentence2", "label1", "gold_label"),
}
_HEADERS["mnli_dev"] = (_HEADERS["mnli_train"][:-1]
                        + ("label2", "label3", "label4", "label5", "gold_label"))


def _cola_rows(data: Sequence[tuple[int, str]]) -> Iterator[_Row]:
    for i, (label, sentence) in enumerate(data):
        source = _COLA_SOURCES[(i // 4) % len(_COLA_SOURCES)]
        yield source, label, "" if label else "*", sentence


def _sst2_rows(data: Sequence[tuple[str, int]]) -> Iterator[_Row]:
    for sentence, label in data:
        yield sentence + " ", label  # the real file has a space before the tab


def _mrpc_rows(data: Sequence[tuple[str, str, int]], start: int) -> Iterator[_Row]:
    for i, (s1, s2, quality) in enumerate(data, start):
        yield quality, 702876 + 7919 * i, 702977 + 7919 * i, s1, s2


def _stsb_rows(data: Sequence[tuple[str, str, float]], start: int) -> Iterator[_Row]:
    for i, (s1, s2, score) in enumerate(data):
        genre, filename, year = _STSB_SOURCES[i % len(_STSB_SOURCES)]
        yield i, genre, filename, year, f"{start + i:04d}", "none", "none", s1, s2, f"{score:.3f}"


def _qqp_rows(data: Sequence[tuple[str, str, int]], start: int) -> Iterator[_Row]:
    for i, (q1, q2, dup) in enumerate(data, start):
        yield i, 2 * i + 1, 2 * i + 2, q1, q2, dup


def _mnli_rows(data: Sequence[tuple[str, str, str, str]], start: int,
               dev: bool) -> Iterator[_Row]:
    for i, (genre, s1, s2, gold) in enumerate(data):
        prompt = 31193 + 1013 * (start + i)
        labels = _annotators(gold, i) if dev else [gold]
        yield (i, prompt, f"{prompt}{gold[0]}", genre, _binary_parse(s1), _binary_parse(s2),
               _parse(s1), _parse(s2), s1, s2, *labels, gold)


def _indexed_rows(data: Sequence[tuple[str, str, object]]) -> Iterator[_Row]:
    for i, (a, b, label) in enumerate(data):
        yield i, a, b, label


def _snli_records(data: Sequence[tuple[int, str, str, str]], start: int,
                  dev: bool) -> Iterator[dict[str, object]]:
    for i, (k, premise, hypothesis, gold) in enumerate(data):
        caption = f"{2_000_000_000 + 104_729 * (start + k)}.jpg#{k % 5}"
        yield {
            "annotator_labels": _annotators(gold, i, 5 if dev or gold == "-" else 1),
            "captionID": caption,
            "gold_label": gold,
            "pairID": f"{caption}r1{'n' if gold == '-' else gold[0]}",
            "sentence1": premise,
            "sentence1_binary_parse": _binary_parse(premise),
            "sentence1_parse": _parse(premise),
            "sentence2": hypothesis,
            "sentence2_binary_parse": _binary_parse(hypothesis),
            "sentence2_parse": _parse(hypothesis),
        }


# --------------------------------------------------------------------------------------------
# Writers and the table of files per task.
# --------------------------------------------------------------------------------------------
def _check_field(value: object, path: pathlib.Path) -> str:
    text = str(value)
    if any(c in text for c in "\t\n\r"):
        raise ValueError(f"fixture field for {path} contains a tab or newline: {text!r}")
    return text


def _write_tsv(path: pathlib.Path, header: Sequence[str] | None, rows: Iterable[_Row]) -> None:
    """Tab-separated, no quoting at all, `\\n` line endings, UTF-8 without BOM."""
    lines = [] if header is None else ["\t".join(header)]
    lines += ["\t".join(_check_field(v, path) for v in row) for row in rows]
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def _write_jsonl(path: pathlib.Path, records: Iterable[Mapping[str, object]]) -> None:
    """One JSON object per line, like the SNLI 1.0 distribution."""
    lines = []
    for rec in records:
        for value in rec.values():
            if isinstance(value, str):
                _check_field(value, path)
        lines.append(json.dumps(rec, ensure_ascii=False))
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


@dataclass(frozen=True)
class _File:
    """One output file: path relative to root, header (None: no header or JSON lines), rows."""

    path: str
    header: tuple[str, ...] | None
    rows: Callable[[], Iterable]


def _pair_header(a: str, b: str) -> tuple[str, ...]:
    """Header of the QNLI, RTE and WNLI files."""
    return ("index", a, b, "label")


_FILES: dict[str, tuple[_File, ...]] = {
    "cola": (
        _File("CoLA/train.tsv", None, lambda: _cola_rows(_COLA_TRAIN)),
        _File("CoLA/dev.tsv", None, lambda: _cola_rows(_COLA_DEV)),
    ),
    "sst2": (
        _File("SST-2/train.tsv", _HEADERS["sst2"], lambda: _sst2_rows(_SST2_TRAIN)),
        _File("SST-2/dev.tsv", _HEADERS["sst2"], lambda: _sst2_rows(_SST2_DEV)),
    ),
    "mrpc": (
        _File("MRPC/train.tsv", _HEADERS["mrpc"], lambda: _mrpc_rows(_MRPC_TRAIN, 0)),
        _File("MRPC/dev.tsv", _HEADERS["mrpc"], lambda: _mrpc_rows(_MRPC_DEV, 100)),
    ),
    "stsb": (
        _File("STS-B/train.tsv", _HEADERS["stsb"], lambda: _stsb_rows(_STSB_TRAIN, 0)),
        _File("STS-B/dev.tsv", _HEADERS["stsb"], lambda: _stsb_rows(_STSB_DEV, 100)),
    ),
    "qqp": (
        _File("QQP/train.tsv", _HEADERS["qqp"], lambda: _qqp_rows(_QQP_TRAIN, 1)),
        _File("QQP/dev.tsv", _HEADERS["qqp"], lambda: _qqp_rows(_QQP_DEV, 101)),
    ),
    "mnli": (
        _File("MNLI/train.tsv", _HEADERS["mnli_train"],
              lambda: _mnli_rows(_MNLI_TRAIN, 0, dev=False)),
        _File("MNLI/dev_matched.tsv", _HEADERS["mnli_dev"],
              lambda: _mnli_rows(_MNLI_DEV_MATCHED, 100, dev=True)),
        _File("MNLI/dev_mismatched.tsv", _HEADERS["mnli_dev"],
              lambda: _mnli_rows(_MNLI_DEV_MISMATCHED, 200, dev=True)),
    ),
    "qnli": (
        _File("QNLI/train.tsv", _pair_header("question", "sentence"),
              lambda: _indexed_rows(_QNLI_TRAIN)),
        _File("QNLI/dev.tsv", _pair_header("question", "sentence"),
              lambda: _indexed_rows(_QNLI_DEV)),
    ),
    "rte": (
        _File("RTE/train.tsv", _pair_header("sentence1", "sentence2"),
              lambda: _indexed_rows(_RTE_TRAIN)),
        _File("RTE/dev.tsv", _pair_header("sentence1", "sentence2"),
              lambda: _indexed_rows(_RTE_DEV)),
    ),
    "wnli": (
        _File("WNLI/train.tsv", _pair_header("sentence1", "sentence2"),
              lambda: _indexed_rows(_WNLI_TRAIN)),
        _File("WNLI/dev.tsv", _pair_header("sentence1", "sentence2"),
              lambda: _indexed_rows(_WNLI_DEV)),
    ),
    "snli": (
        _File("SNLI/snli_1.0_train.jsonl", None,
              lambda: _snli_records(_SNLI_TRAIN, 0, dev=False)),
        _File("SNLI/snli_1.0_dev.jsonl", None, lambda: _snli_records(_SNLI_DEV, 100, dev=True)),
        _File("SNLI/snli_1.0_test.jsonl", None,
              lambda: _snli_records(_SNLI_TEST, 200, dev=True)),
    ),
}
assert tuple(_FILES) == FIXTURE_TASKS


def _task_name(task: str) -> str:
    """Accept "sst2", "SST-2", "sts_b", ...; raise ValueError on unknown names."""
    name = task.lower().replace("-", "").replace("_", "")
    if name not in _FILES:
        raise ValueError(f"unknown fixture task {task!r}; expected one of {FIXTURE_TASKS}")
    return name


def write_fixtures(root: str | os.PathLike, tasks: Iterable[str] | None = None) -> pathlib.Path:
    """Write fixture files for `tasks` (default all) under root in the official GLUE layout.

    Returns `root` as a Path. Existing files of the same names are overwritten; nothing else
    under `root` is touched. Task names are matched loosely ("SST-2" == "sst2").
    """
    root = pathlib.Path(root)
    if tasks is None:
        names = list(FIXTURE_TASKS)
    else:
        if isinstance(tasks, str):
            tasks = [tasks]
        names = list(dict.fromkeys(_task_name(t) for t in tasks))
    for name in names:
        for spec in _FILES[name]:
            path = root / spec.path
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".jsonl":
                _write_jsonl(path, spec.rows())
            else:
                _write_tsv(path, spec.header, spec.rows())
    return root
