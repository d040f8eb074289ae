package com.example.consumer;

import io.quiesce.net.Client;
import io.quiesce.net.Connection;
import io.quiesce.net.ConnectionHandler;
import io.quiesce.net.Server;
import io.quiesce.reactor.ReactorGroup;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A tiny application using Quiesce from outside: an echo server on 127.0.0.1 and a client of it,
 * one message there and back, then an orderly shutdown. It prints one line on stdout, naming the
 * modules it ran in, and nothing else anywhere.
 */
public final class EchoApp {
    private static final ConnectionHandler ECHO = new ConnectionHandler() {
        @Override
        public void onRead(Connection c, MemorySegment data) {
            c.write(data);
        }
    };

    public static void main(String[] args) throws Exception {
        byte[] message = "hello from a consumer of Quiesce".getBytes(StandardCharsets.US_ASCII);
        var echoed = new CompletableFuture<byte[]>();
        try (var group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2))) {
            Server server = Server.bind(group, new InetSocketAddress("127.0.0.1", 0), () -> ECHO);
            var received = new ByteArrayOutputStream();
            Connection client = Client.connect(group.next(), new InetSocketAddress("127.0.0.1", server.port()),
                    new ConnectionHandler() {
                        @Override
                        public void onRead(Connection c, MemorySegment data) {
                            received.writeBytes(data.toArray(ValueLayout.JAVA_BYTE));
                            if (received.size() >= message.length) {
                                echoed.complete(received.toByteArray());
                                c.close();
                            }
                        }

                        @Override
                        public void onClose(Connection c, Throwable cause) {
                            if (cause != null) {
                                echoed.completeExceptionally(cause);
                            }
                        }
                    }).get(30, TimeUnit.SECONDS);
            client.write(message);
            byte[] back = echoed.get(30, TimeUnit.SECONDS);
            if (!Arrays.equals(message, back)) {
                throw new AssertionError("echoed " + new String(back, StandardCharsets.US_ASCII));
            }
            client.closeFuture().get(30, TimeUnit.SECONDS);
            server.close();
            System.out.println("consumer ok: " + back.length + " bytes echoed; app module "
                    + EchoApp.class.getModule().getName() + ", library module "
                    + ReactorGroup.class.getModule().getName());
        }
    }
}
