"""The tentacle activation of a standard OctoBot 2.1.1 bot, for the profiles we build.

A profile's `tentacles_config.json` is the whole activation list: OctoBot treats every tentacle it does
not name as off (web interface included). A profile of ours must therefore name what a standard bot
runs. These are the names OctoBot's tentacles manager activates when it installs OctoBot 2.1.1's default
tentacles (its rule: everything except evaluators, trading modes and supervisors), read off a fresh
bot's `user/reference_tentacles_config/tentacles_config.json`; `tests/test_webui_journey.py` checks
them against a real install. Names only: OctoBot ignores the names of tentacles a bot lacks.
"""
from __future__ import annotations


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Active on a standard bot, by tentacle type (trading modes excluded: see OTHER_TRADING_MODES).
STANDARD_ACTIVE: dict[str, tuple[str, ...]] = {
    "Agent": _names("""
        AIPlanTeamManagerAgent AIToolsTeamManagerAgent BearResearchAgent BullResearchAgent
        DefaultAICriticAgent DefaultAIMemoryAgentProducer DefaultCriticAgent DefaultMemoryAgentProducer
        DefaultTeamManagerAgent DistributionAgent RealTimeAnalysisAgent RiskAgent RiskJudgeAgent
        SentimentAnalysisAgent SignalAgent SimpleAIEvaluatorAgentsTeam SummarizationAgent
        TechnicalAnalysisAgent
    """),
    "Automation": _names("""
        CancelOpenOrders HoldingThreshold NoCondition PeriodicCheck PriceThreshold ProfitabilityThreshold
        ScriptedCondition SellAllCurrencies SendNotification StopStrategiesAndPauseTrader StopTrading
        VolatilityThreshold
    """),
    "Backtesting": _names("""
        ExchangeBotSnapshotCollector ExchangeHistoryDataCollector ExchangeLiveDataCollector
        GenericExchangeDataImporter GenericSocialDataImporter LegacyDataConverter SocialHistoryDataCollector
        SocialLiveDataCollector
    """),
    "Evaluator": _names("""
        CandlesUtil OverallStateAnalyser PatternAnalyser StatisticAnalysis TextAnalysis TrendAnalysis
    """),
    "Services": _names("""
        AlternativeMeService AlternativeMeServiceFeed AlternativeMeServiceFeedSimulator BirdService
        CoindeskService CoindeskServiceFeed CoindeskServiceFeedSimulator CoingeckoService
        CoingeckoServiceFeed CoingeckoServiceFeedSimulator ExchangeServiceFeed GPTService GoogleService
        GoogleServiceFeed LLMService LLMSignalService LangChainService LunarCrushService
        LunarCrushServiceFeed LunarCrushServiceFeedSimulator NodeApiService RedditService RedditServiceFeed
        SearXNGService TavilyService TelegramApiService TelegramApiServiceFeed TelegramBotInterface
        TelegramNotifier TelegramService TelegramServiceFeed TradingViewService TradingViewServiceFeed
        TwitterNotifier TwitterService TwitterServiceFeed WebHookService WebInterface WebNotifier WebService
    """),
    "Trading": _names("""
        AscendEx AscendexCCXTWebsocketConnector Binance BinanceCCXTWebsocketConnector BinanceUS
        BinanceUSCCXTFeedConnector Bingx BingxCCXTWebsocketConnector BitMart BitMartCCXTWebsocketConnector
        Bitfinex BitfinexCCXTWebsocketConnector Bitget BitgetCCXTWebsocketConnector Bithumb Bitmex Bitso
        Bitstamp Bybit BybitCCXTWebsocketConnector Coinbase CoinbaseCCXTWebsocketConnector CoinbasePro
        CoinbaseProCCXTWebsocketConnector Coinex CoinexCCXTWebsocketConnector
        ConfigurableDefaultCCXTRestExchange CryptoCom CryptoComCCXTWebsocketConnector EVMBlockchainWallet
        GateIO GateIOCCXTWebsocketConnector Hitbtc HollaexAutofilled HollaexAutofilledCCXTWebsocketConnector
        HollaexCCXTWebsocketConnector Htx HtxCCXTWebsocketConnector Huobi HuobiCCXTWebsocketConnector
        Hyperliquid HyperliquidCCXTWebsocketConnector Kraken KrakenCCXTWebsocketConnector Kucoin
        KucoinCCXTWebsocketConnector LBank LBankCCXTWebsocketConnector MEXC MEXCCCXTWebsocketConnector
        MyOKXCCXTWebsocketConnector MyOkx Ndax OKXCCXTWebsocketConnector Okcoin Okx OkxUs
        OkxUsCCXTWebsocketConnector Phemex PhemexCCXTWebsocketConnector Poloniex Polymarket
        PolymarketWebsocketConnector UpbitExchange WavesExchange hollaex
    """),
}

# This package's own tentacles besides the mode, active as OctoBot's tentacles manager activates them on
# install: the web UI's `octobot-signals` hub account card (service/, a Services tentacle).
OWN_ACTIVE: dict[str, tuple[str, ...]] = {"Services": ("OctoBotSignalsService",)}

# Every other trading mode of OctoBot's default set: written as off, so a profile of ours never runs
# one of them next to the copy-trading mode.
OTHER_TRADING_MODES: tuple[str, ...] = _names("""
    AIIndexTradingMode ArbitrageTradingMode BlankTradingMode DCATradingMode DSLTradingMode
    DailyTradingMode DipAnalyserTradingMode GridTradingMode IndexTradingMode MarketMakingTradingMode
    ProfileCopyTradingMode SignalTradingMode StaggeredOrdersTradingMode TradingViewSignalsTradingMode
""")
