import NIOCore
import Proxy

/// What the HTTP/1.1 handler and the HTTP/2 stream share in carrying out an exchange's
/// actions: signing the assertion and getting an upstream connection, whose results go
/// back into the machine. The rest of `perform` is each framing's own.
protocol ExchangeDriver: UpstreamDelegate {
    var eventLoopContext: LoopContext { get }
    /// Whether `exchange` is still the one being served: a late completion (a signature, a
    /// connection) for one the client has left is dropped.
    func isServing(_ exchange: Exchange) -> Bool
    /// Carries out one action of the exchange's machine.
    func perform(_ action: ExchangeMachine.Action, _ exchange: Exchange)
    /// Called as a connection is attached: whether it may be read at once (else its reads
    /// wait until the client can take more).
    func allowsUpstreamReadsOnAttach() -> Bool
}

extension ExchangeDriver {
    /// `.signAssertion`: signs, then tells the machine.
    func signAssertion(for exchange: Exchange) {
        exchange.addAssertion(on: eventLoopContext.eventLoop) { error in
            guard self.isServing(exchange) else { return }
            self.perform(exchange.machine.handle(.assertionSigned(error)), exchange)
        }
    }

    /// `.acquireUpstream`: an idle pooled connection (unless `fresh`), or a new one.
    func acquireUpstream(for exchange: Exchange, fresh: Bool) {
        let pool = eventLoopContext.pool
        if !fresh, let idle = pool.takeIdle(for: exchange.route.endpoint, tls: exchange.route.tls) {
            attach(idle, to: exchange, reused: true)
            return
        }
        pool.connect(to: exchange.route.endpoint, timeout: min(exchange.route.timeout, .seconds(10)), tls: exchange.route.tls)
            .assumeIsolated()
            .whenComplete { result in
                guard self.isServing(exchange) else {
                    // The client went away while we connected.
                    if case .success(let connection) = result { connection.channel.close(promise: nil) }
                    return
                }
                switch result {
                case .success(let connection):
                    self.attach(connection, to: exchange, reused: false)
                case .failure(let error):
                    self.perform(exchange.machine.handle(.connectFailed(error)), exchange)
                }
            }
    }

    private func attach(_ connection: UpstreamConnection, to exchange: Exchange, reused: Bool) {
        exchange.adopt(connection, delegate: self, readsAllowed: allowsUpstreamReadsOnAttach())
        perform(exchange.machine.handle(.upstreamReady(reused: reused, now: .now(), timeout: exchange.route.timeout)), exchange)
    }
}
